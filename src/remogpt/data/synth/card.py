"""The data card of a generated folder, and the learnability check behind one of its numbers.

Learnability: a linear classifier on pooled motion features, trained on the train split, must name
the first action of a test clip (with its side) far better than chance. If it cannot, captions do
not determine motions and nothing trained later on this data can mean much.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from remogpt.artifacts import atomic_write_text
from remogpt.data.folder import load_captions, load_features, motion_file
from remogpt.data.normalize import Normalizer
from remogpt.motion.mirror import mirror_caption

__all__ = ["held_out_statistics", "learnability", "pooled_descriptor", "write_card"]


def pooled_descriptor(features: np.ndarray) -> np.ndarray:
    """Fixed-size summary of a normalised clip: mean, std and the means of its four quarters."""
    quarters = np.array_split(features, 4)
    return np.concatenate([features.mean(0), features.std(0)] + [q.mean(0) for q in quarters])


def _mirror_label(label: str) -> str:
    return mirror_caption(label.replace(":", " : ")).replace(" : ", ":")


def learnability(root: Path, labels: list[dict], seed: int = 0, steps: int = 150) -> dict:
    """Test accuracy of a softmax-regression classifier of the primary action (side included).

    150 full-batch steps: on the default build the accuracy is that of 300 (0.985), in half the time."""
    norm = Normalizer.load(root)
    rows: dict[str, list[tuple[np.ndarray, str]]] = {"train": [], "test": []}
    for row in labels:
        if row["split"] not in rows:
            continue
        for clip_id, label in ((row["id"], row["primary"]), ("M" + row["id"], _mirror_label(row["primary"]))):
            feats = norm.normalize(load_features(motion_file(root, clip_id)))
            rows[row["split"]].append((pooled_descriptor(feats), label))
    classes = sorted({lab for _, lab in rows["train"]})
    index = {c: i for i, c in enumerate(classes)}
    if len(classes) < 2 or not any(lab in index for _, lab in rows["test"]):
        return {
            "classes": len(classes),
            "train_items": len(rows["train"]),
            "test_items": 0,
            "accuracy": None,
            "chance_majority": None,
            "chance_uniform": None,
            "side_accuracy_given_action": None,
            "model": "not run: too few clips for a train/test comparison",
        }
    x_tr = torch.tensor(np.stack([d for d, _ in rows["train"]]), dtype=torch.float32)
    y_tr = torch.tensor([index[lab] for _, lab in rows["train"]])
    test = [(d, lab) for d, lab in rows["test"] if lab in index]
    x_te = torch.tensor(np.stack([d for d, _ in test]), dtype=torch.float32)
    y_te = torch.tensor([index[lab] for _, lab in test])
    mu, sd = x_tr.mean(0), x_tr.std(0).clamp_min(1e-6)
    x_tr, x_te = (x_tr - mu) / sd, (x_te - mu) / sd
    gen = torch.Generator().manual_seed(seed)
    model = torch.nn.Linear(x_tr.shape[1], len(classes))
    with torch.no_grad():
        model.weight.normal_(0, 0.01, generator=gen)
        model.bias.zero_()
    opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=1e-3)
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x_tr), y_tr)
        loss.backward()
        opt.step()
    with torch.no_grad():
        pred = model(x_te).argmax(1)
    accuracy = float((pred == y_te).float().mean())
    majority = Counter(y_tr.tolist()).most_common(1)[0][0]
    chance = float((y_te == majority).float().mean())
    # Side: among test clips whose action has a side, is the predicted side right when the action is?
    names = [c.split(":")[0] for c in classes]
    same_action = torch.tensor([names[p] == names[t] for p, t in zip(pred.tolist(), y_te.tolist(), strict=True)])
    sided = torch.tensor([":" in classes[t] for t in y_te.tolist()])
    mask = same_action & sided
    side_acc = float((pred[mask] == y_te[mask]).float().mean()) if mask.any() else float("nan")
    return {
        "classes": len(classes),
        "train_items": len(y_tr),
        "test_items": len(y_te),
        "accuracy": round(accuracy, 4),
        "chance_majority": round(chance, 4),
        "chance_uniform": round(1.0 / len(classes), 4),
        "side_accuracy_given_action": round(side_acc, 4),
        "model": "softmax regression on pooled normalised features (mean, std, 4 quarter means)",
    }


#: Fewest train clips (originals) each action of a held-out atom should have on its own: below it, a
#: model failing on test_compositional may just not know the action, not fail to compose it.
COMMON_IN_TRAIN = 50


def held_out_statistics(labels: list[dict], common: int = COMMON_IN_TRAIN) -> dict:
    """The held-out atoms with their clips per split, and how common each of their actions is in train
    on its own (original clips; each also has a mirror in its split); `all_common` says whether every
    one has at least `common` train clips (a statistic for the card, not a check that fails)."""
    from remogpt.data.synth.compose import (
        HELD_OUT_ATOMS,
        HELD_OUT_COUNTS,
        HELD_OUT_ORDERS,
        HELD_OUT_PAIRS,
        HELD_OUT_SIDES,
        held_out_atoms,
    )

    per_atom: dict[str, Counter[str]] = {atom: Counter() for atom in HELD_OUT_ATOMS}
    actions: Counter[str] = Counter()
    for row in labels:
        for atom in held_out_atoms(row):
            per_atom.setdefault(atom, Counter())[row["split"]] += 1
        if row["split"] == "train":
            actions.update({a["name"] for ph in row["phases"] for a in ([ph["base"]] if ph["base"] else [])
                            + ph["overlays"]})  # fmt: skip
    names = ({n for pair in HELD_OUT_PAIRS + HELD_OUT_ORDERS for n in pair}
             | {n for n, _ in HELD_OUT_COUNTS} | {n for n, _, _ in HELD_OUT_SIDES})  # fmt: skip
    per_action = {n: actions[n] for n in sorted(names)}
    return {
        "atoms": {k: dict(v) for k, v in per_atom.items()},
        "train_clips_per_action": per_action,
        "least_common_action": min(per_action.items(), key=lambda kv: kv[1]) if per_action else None,
        "common_threshold": common,
        "all_common": all(n >= common for n in per_action.values()),
    }


def _caption_stats(root: Path) -> dict:
    texts = sorted((root / "texts").glob("*.txt"))
    captions: list[str] = []
    per_clip = []
    timed = 0
    for path in texts:
        caps = load_captions(path)
        per_clip.append(len(caps))
        timed += sum(not c.is_whole_clip for c in caps)
        captions += [c.text for c in caps]
    words = [w for c in captions for w in re.findall(r"[a-z']+", c.lower())]
    return {
        "captions": len(captions),
        "distinct_captions": len(set(captions)),
        "timed_captions": timed,
        "captions_per_clip": float(np.mean(per_clip)),
        "vocabulary": len(set(words)),
        "mean_words": float(len(words) / max(len(captions), 1)),
    }


def _rare_row(counts: dict, base: str, arm: str) -> str:
    c = counts.get(f"{base}+{arm}", {})
    return f"| {base} + {arm} | {c.get('train', 0)} | {c.get('val', 0)} | {c.get('test', 0)} |"


def write_card(root: Path, config, stats: dict, data_hash: str, version: int) -> None:  # type: ignore[no-untyped-def]
    """DATA_CARD.md: what is in the folder and the figures that say whether it is fit to learn from."""
    from remogpt.data.synth.compose import RARE_COMBOS

    caps = _caption_stats(root)
    stats["captions"] = caps
    q, learn = stats["quality"], stats["learnability"]
    if learn["accuracy"] is None:
        learn_text = [f"{learn['model']}."]
    else:
        learn_text = [
            f"{learn['model']}, trained on train, predicting the first action with its side "
            f"({learn['classes']} classes):",
            f"test accuracy **{100 * learn['accuracy']:.1f}%** on {learn['test_items']} motions, against "
            f"{100 * learn['chance_majority']:.1f}% for the majority class and {100 * learn['chance_uniform']:.1f}% "
            f"uniform; side right in {100 * learn['side_accuracy_given_action']:.1f}% of the sided actions it names "
            "correctly.",
        ]
    lines = [
        "# Embedded data set (generated by remogpt)",
        "",
        f"Generator version {version}, seed {config.seed}, {config.clips} clips + their mirrors "
        f"({2 * config.clips} motions) in train/val/test, and {stats['splits'].get('test_compositional', 0)} "
        "motions of compositions held out of train in `test_compositional` (below). Same seed → "
        f"byte-identical files (content hash `{data_hash[:16]}`).",
        "HumanML3D layout: `new_joint_vecs/` (T, 263), `new_joints/` (T, 22, 3) recovered from the features,",
        "`texts/` (`caption#word/POS …#start#end`), `train/val/test.txt`, `Mean.npy`/`Std.npy` (train, grouped std),",
        "`labels.jsonl` (what each clip contains, for analysis). 20 fps, SMPL-22 with HumanML3D's reference",
        "bone lengths.",
        "",
        "## Splits",
        "",
        "| split | motions |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in stats["splits"].items()],
        "",
        "## Captions",
        "",
        f"- {caps['captions']} captions ({caps['distinct_captions']} distinct), "
        f"{caps['captions_per_clip']:.2f} per motion, "
        f"{caps['timed_captions']} timed (a phase with its span).",
        f"- Vocabulary {caps['vocabulary']} words; {caps['mean_words']:.1f} words per caption on average.",
        "",
        "## Content",
        "",
        "| clip kind | clips |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in stats["kinds"].items()],
        "",
        "| part | clips using it |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in stats["per_part"].items()],
        "",
        "| primitive | clips |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in stats["per_primitive"].items()],
        "",
        "Length (feature frames, 1-second bins from 0 s):",
        "",
        "```",
        *[
            f"{i:2d}-{i + 1:2d} s {'#' * max(0, round(60 * n / max(stats['feature_frames']['histogram_1s'])))} {n}"
            for i, n in enumerate(stats["feature_frames"]["histogram_1s"])
        ],
        "```",
        f"min {stats['feature_frames']['min']}, mean {stats['feature_frames']['mean']:.1f}, "
        f"max {stats['feature_frames']['max']} frames.",
        "",
        "## Physical validity (joints recovered from the features, in float64 before writing)",
        "",
        f"- Bone lengths constant to {q['bone_length_spread_max']:.1e} m (max spread of any bone over any clip).",
        f"- Lowest joint over all clips: {q['lowest_point_min']:+.4f} m (floor is 0; never below by more than 1 cm).",
        f"- Foot skating during contacts: {q['foot_skating_mean']:.4f} m/frame mean horizontal foot speed "
        f"on contact frames; contact on {100 * q['contact_fraction']:.0f}% of foot-frames.",
        "",
        "## Learnability",
        "",
        *learn_text,
        "",
        "## Rare combinations (rare in train, present in test)",
        "",
        "| base + arm action | train | val | test |",
        "|---|---|---|---|",
        *[_rare_row(stats["rare_combos"], b, a) for b, a in RARE_COMBOS],
        "",
        "Counts are original clips; each also has a mirror in the same split.",
        "",
        *_compositional_section(stats),
    ]
    atomic_write_text(root / "DATA_CARD.md", "\n".join(lines))


def _compositional_section(stats: dict) -> list[str]:
    held, overlap = stats.get("held_out"), stats.get("overlap_with_train")
    if not held or not overlap:
        return []
    splits = [s for s in ("val", "test", "test_compositional") if s in overlap]
    lines = [
        "## How much of each split is already in train",
        "",
        "A test clip whose composition (every phase's actions with their counts, sides and directions, mirrors",
        "included) or caption occurs verbatim in train can be answered by copying the nearest training clip,",
        "and the i.i.d. val/test splits share many of both with train. The `test_compositional` split is",
        "drawn beside them (its clips numbered after theirs, val and test left exactly as they were): each",
        "of its clips holds at least one held-out atom (below): an action at the same time as another, a",
        "count, a side or direction, or one action right after another, that no train clip holds, while each",
        "action on its own is common in train. The atoms read the same in a clip and in its mirror, which",
        "joins the same split. The split has no timed captions, and every caption that also occurs in train",
        "was removed (a clip left without one was dropped), so its compositions and captions in train are 0.",
        "",
        "| split | motions | compositions in train | captions in train |",
        "|---|---|---|---|",
    ]
    for s in splits:
        o = overlap[s]
        comp = (f"{o['compositions_in_train']} ({100 * o['compositions_in_train_share']:.0f} %)"
                if "compositions_in_train" in o else "–")  # fmt: skip
        caps = f"{o['captions_in_train']} of {o['captions']} ({100 * (o['captions_in_train_share'] or 0):.0f} %)"
        lines.append(f"| {s} | {o['clips']} | {comp} | {caps} |")
    lines += ["", "Held-out atoms (`+` at the same time, `×` a count, `:` a side or direction, `>` one phase then "
              "the next) and the original clips holding each:", "",
              "| atom | train | val | test | test_compositional |", "|---|---|---|---|---|"]  # fmt: skip
    for atom, c in held["atoms"].items():
        lines.append(f"| {atom} | {c.get('train', 0)} | {c.get('val', 0)} | {c.get('test', 0)} | "
                     f"{c.get('test_compositional', 0)} |")  # fmt: skip
    least, threshold = held["least_common_action"], held.get("common_threshold", 50)
    verdict = (f"every one in at least {threshold} train clips" if held.get("all_common")
               else f"**not** every one in {threshold} or more train clips: too few for this protocol")  # fmt: skip
    lines += ["", "Each action of these atoms on its own stays common in train (original clips holding it): "
              + ", ".join(f"{k} {v}" for k, v in held["train_clips_per_action"].items())
              + (f"; the least common, {least[0]}, in {least[1]}" if least else "") + f"; {verdict}.", ""]  # fmt: skip
    return lines
