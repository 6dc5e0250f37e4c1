"""The embedded data set: layout, determinism, physical validity, captions that say what happens."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from remogpt.data import check_folder, load_captions, load_features, load_split
from remogpt.data.synth.body import animate, rest_offsets
from remogpt.data.synth.captions import LEXICON, VERBS, caption_line, realize
from remogpt.data.synth.compose import RARE_COMBOS, build_joints, caption_words, sample_spec
from remogpt.data.synth.generate import SynthConfig, is_complete, synthesize
from remogpt.data.synth.primitives import FPS, PRIMITIVES, Timeline, idle, phrases
from remogpt.motion import HUMANML3D, features_to_joints, mirror_features, process_joints

# ---------------------------------------------------------------- a small generated folder


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "embedded"
    synthesize(out, SynthConfig(clips=150, seed=7), workers=1)
    return out


@pytest.fixture(scope="module")
def labels(synth_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (synth_dir / "labels.jsonl").read_text().splitlines()]


def test_layout_and_check_pass(synth_dir: Path):
    for name in (
        "new_joint_vecs",
        "new_joints",
        "texts",
        "train.txt",
        "val.txt",
        "test.txt",
        "Mean.npy",
        "Std.npy",
        "DATA_CARD.md",
        "labels.jsonl",
        "synth.json",
    ):
        assert (synth_dir / name).exists(), name
    report = check_folder(synth_dir)
    assert report.ok, report.format()
    assert not report.warnings, report.format()
    n = 150 + SynthConfig(clips=150).compositional_count  # the i.i.d. clips and the compositional split's
    assert report.stats["clips"] == 2 * n and report.stats["mirrored"] == n
    splits = ("train", "val", "test", "test_compositional")
    ids = [i for s in splits for i in synth_dir.joinpath(f"{s}.txt").read_text().split()]
    assert len(ids) == len(set(ids)) == 2 * n
    feats = load_features(synth_dir / "new_joint_vecs" / "000000.npy")
    assert feats.shape[1] == 263 and 40 <= len(feats) < 200
    assert np.abs(features_to_joints(feats) - np.load(synth_dir / "new_joints" / "000000.npy")).max() < 1e-6


def test_physical_validity(synth_dir: Path):
    q = check_folder(synth_dir).stats["quality"]
    assert q["bone_length_spread_max"] < 1e-4  # bones keep their length
    assert q["lowest_point_min"] > -0.01  # never more than 1 cm below the floor
    assert q["foot_skating_mean"] < 0.006  # m/frame on contact frames (0.12 m/s)
    assert 0.5 < q["contact_fraction"] < 0.98
    # Feet do touch the floor: in every clip some foot joint is within 1 cm of it most of the time.
    for path in sorted((synth_dir / "new_joints").glob("0000*.npy"))[:20]:
        joints = np.load(path)
        feet_low = joints[:, [7, 8, 10, 11], 1].min(axis=1)
        assert np.mean(feet_low < 0.01) > 0.5, path.name


def test_mirrors_are_exact_and_captions_swapped(synth_dir: Path):
    for clip_id in ("000001", "000002", "000003"):
        a = load_features(synth_dir / "new_joint_vecs" / f"{clip_id}.npy")
        m = load_features(synth_dir / "new_joint_vecs" / f"M{clip_id}.npy")
        assert np.array_equal(m, mirror_features(a))
        caps = load_captions(synth_dir / "texts" / f"{clip_id}.txt")
        mcaps = load_captions(synth_dir / "texts" / f"M{clip_id}.txt")
        for c, mc in zip(caps, mcaps, strict=True):
            assert c.text.count("left") == mc.text.count("right") and c.text.count("right") == mc.text.count("left")
            assert (c.start, c.end) == (mc.start, mc.end)


def test_captions_format_and_content(synth_dir: Path, labels: list[dict]):
    pos_tags = {"DET", "NOUN", "VERB", "ADV", "ADJ", "ADP", "PRON", "CCONJ", "SCONJ", "NUM", "AUX", "INTJ"}
    for row in labels:
        caps = load_captions(synth_dir / "texts" / f"{row['id']}.txt")
        whole = [c for c in caps if c.is_whole_clip]
        assert 3 <= len(whole) <= 4 and len({c.text for c in whole}) == len(whole)
        for cap in caps:
            assert all(tok.split("/")[1] in pos_tags for tok in cap.tokens), cap.tokens
        # The side of a lateral first action is in every whole-clip caption that names it.
        first = row["phases"][0]
        acts = ([first["base"]] if first["base"] else []) + first["overlays"]
        for act in acts:
            side = act.get("side")
            if side in ("left", "right") and act["name"] not in ("twist", "look_around"):
                assert sum(side in c.text for c in whole) >= len(whole) - 1, (act, [c.text for c in whole])
        if row["timed"]:
            timed = [c for c in caps if not c.is_whole_clip]
            assert len(timed) == 1 and timed[0].start == row["timed"]["start"]


def test_counts_appear_in_captions(labels: list[dict], synth_dir: Path):
    words = {2: ("twice", "two"), 3: ("three",), 4: ("four",), 5: ("five",)}
    checked = 0
    for row in labels:
        if len(row["phases"]) != 1 or row["phases"][0]["overlays"] or not row["phases"][0]["base"]:
            continue
        base = row["phases"][0]["base"]
        if base["name"] in ("jump", "kick", "squat", "lunge", "hop") and base.get("count", 1) > 1:
            caps = [c.text for c in load_captions(synth_dir / "texts" / f"{row['id']}.txt") if c.is_whole_clip]
            assert all(any(w in c for w in words[base["count"]]) for c in caps), caps
            checked += 1
    assert checked > 0


def test_learnability_far_above_chance(synth_dir: Path):
    info = json.loads((synth_dir / "synth.json").read_text())
    learn = info["stats"]["learnability"]
    assert learn["accuracy"] > 5 * max(learn["chance_majority"], learn["chance_uniform"])
    card = (synth_dir / "DATA_CARD.md").read_text()
    for heading in ("## Splits", "## Captions", "## Physical validity", "## Learnability", "## Rare combinations"):
        assert heading in card


def test_loader_reads_it_like_real_data(synth_dir: Path):
    train = load_split(synth_dir, "train")
    assert len(train) >= 200
    assert all(40 <= c.length < 200 for c in train)
    timed = [c for c in train if "#" in c.id]
    if timed:
        full = load_features(synth_dir / "new_joint_vecs" / f"{timed[0].clip_id}.npy")
        cap = timed[0].captions[0]
        assert np.array_equal(timed[0].features, full[int(cap.start * 20) : int(cap.end * 20)])


# ---------------------------------------------------------------- determinism and caching


def test_same_seed_same_bytes_whatever_the_workers(tmp_path: Path):
    cfg = SynthConfig(clips=12, seed=5)
    a = synthesize(tmp_path / "a", cfg, workers=1)
    b = synthesize(tmp_path / "b", cfg, workers=2)
    assert a.data_hash == b.data_hash
    for path in sorted((tmp_path / "a").rglob("*")):
        if path.is_file():
            assert path.read_bytes() == (tmp_path / "b" / path.relative_to(tmp_path / "a")).read_bytes(), path
    c = synthesize(tmp_path / "c", SynthConfig(clips=12, seed=6), workers=1)
    assert c.data_hash != a.data_hash


def test_cache_reuse_and_partial_builds(tmp_path: Path):
    cfg = SynthConfig(clips=10, seed=1)
    first = synthesize(tmp_path / "d", cfg)
    again = synthesize(tmp_path / "d", cfg)
    assert again.reused and again.data_hash == first.data_hash
    assert not is_complete(tmp_path / "d", SynthConfig(clips=11, seed=1))
    (tmp_path / "d" / "synth.json").unlink()  # an interrupted build has no marker
    assert not is_complete(tmp_path / "d", cfg)
    rebuilt = synthesize(tmp_path / "d", cfg)
    assert not rebuilt.reused and rebuilt.data_hash == first.data_hash


def test_cli_synth_then_check(tmp_path: Path, run_cli):
    out = tmp_path / "cli"
    synth = ("data", "synth", "--out", out, "--clips", "10", "--workers", "1")
    first = run_cli(*synth)
    assert first.returncode == 0, first.stderr
    assert "wrote 20 motions" in first.stdout and "learnability" in first.stdout
    second = run_cli(*synth)
    assert second.returncode == 0 and "already built" in second.stdout
    check = run_cli("data", "check", out)
    assert check.returncode == 0 and "result: OK" in check.stdout


# ---------------------------------------------------------------- primitives do what they say


def _clip(name: str, **params: object) -> np.ndarray:
    """Joints recovered from features (canonical frame: starts at the origin facing +Z)."""
    rng = np.random.default_rng(0)
    prim = PRIMITIVES[name]
    p = prim.sample_params(rng)
    p.update(params)
    n = int(prim.duration(p, rng) * FPS)
    tl = Timeline(n + 16, rng)
    idle(tl, slice(0, n + 16))
    prim.animate(tl, slice(8, 8 + n), p)
    joints = animate(tl.finish(), rest_offsets())
    _, recovered = process_joints(joints)
    return recovered


J = {name: i for i, name in enumerate(HUMANML3D.joint_names)}


def test_locomotion_goes_where_it_says():
    walk = _clip("walk", speed="normal")
    assert walk[-1, 0, 2] - walk[0, 0, 2] > 2.0 and abs(walk[-1, 0, 0] - walk[0, 0, 0]) < 0.5
    back = _clip("walk_backward", speed="normal")
    assert back[-1, 0, 2] - back[0, 0, 2] < -1.0
    run, walk_speed = _clip("run", speed="normal"), (walk[-1, 0, 2] - walk[0, 0, 2]) / len(walk)
    assert (run[-1, 0, 2] - run[0, 0, 2]) / len(run) > 1.5 * walk_speed
    left = _clip("sidestep", side="left", count=3)
    assert left[-1, 0, 0] - left[0, 0, 0] > 0.5  # the body's left is +X
    right = _clip("sidestep", side="right", count=3)
    assert right[-1, 0, 0] - right[0, 0, 0] < -0.5


@pytest.mark.parametrize(("direction", "sign"), [("left", 1), ("right", -1)])
def test_turn_direction(direction: str, sign: int):
    joints = _clip("turn", direction=direction, angle=90)
    across = joints[:, 1] - joints[:, 2]  # left hip − right hip, along +X when facing +Z
    heading = np.unwrap(np.arctan2(-across[:, 2], across[:, 0]))
    assert sign * (heading[-1] - heading[0]) == pytest.approx(np.pi / 2, abs=0.35)


def test_arms_and_legs_move_on_the_named_side():
    wave = _clip("wave", side="right")
    head = wave[:, J["head"], 1]
    assert (wave[:, J["right_wrist"], 1] > head).any() and not (wave[:, J["left_wrist"], 1] > head - 0.3).any()
    raise_left = _clip("raise", side="left", style="overhead")
    assert (raise_left[:, J["left_wrist"], 1] > raise_left[:, J["head"], 1] + 0.2).any()
    kick = _clip("kick", side="left", count=1, height="high")
    assert kick[:, J["left_foot"], 1].max() > 0.5 and kick[:, J["right_foot"], 1].max() < 0.1
    hop = _clip("hop", side="right", count=3, direction="in_place")
    # Hopping on the right foot: the left foot is held well above the right one.
    assert np.median(hop[:, J["left_foot"], 1]) > np.median(hop[:, J["right_foot"], 1]) + 0.15
    lean = _clip("lean", side="left", count=1)
    assert (lean[:, J["head"], 0] - lean[:, 0, 0]).max() > 0.12  # head goes to the body's left (+X)
    lean_right = _clip("lean", side="right", count=1)
    assert (lean_right[:, J["head"], 0] - lean_right[:, 0, 0]).min() < -0.12


def test_whole_body_actions():
    standing = _clip("wave", side="left")[0, 0, 1]
    jump = _clip("jump", count=1, direction="in_place", height="high")
    assert jump[:, 0, 1].max() > standing + 0.15 and jump[:, J["left_foot"], 1].max() > 0.15
    squat = _clip("squat", count=1)
    assert squat[:, 0, 1].min() < standing - 0.3
    sit = _clip("sit_down", stand_up=False)
    assert sit[-9, 0, 1] < standing - 0.25  # the last frame of the primitive (8 idle frames follow)
    bend = _clip("bend_forward")
    assert (bend[:, J["head"], 2] - bend[:, 0, 2]).max() > 0.5 and bend[:, J["head"], 1].min() < 1.2


# ---------------------------------------------------------------- grammar and composition


def test_every_phrase_realises_with_known_words():
    rng = np.random.default_rng(0)
    for name, prim in PRIMITIVES.items():
        assert prim.phrases is not None, name  # every primitive carries its phrases
        for _ in range(25):
            params = prim.sample_params(rng)
            for template in phrases(name, params, rng, "his", "himself"):
                for form in ("3sg", "ing"):
                    words = realize(template, form)
                    assert words and words[0].pos == "VERB", template
                    assert all(w.lemma in VERBS or w.text in LEXICON or w.pos == "PUNCT" for w in words)


def test_caption_line_format():
    line = caption_line(realize("^walk forward while +wave the left hand"))
    text, tokens, start, end = line.split("#")
    assert text == "walks forward while waving the left hand."
    assert tokens == "walk/VERB forward/ADV while/SCONJ wave/VERB the/DET left/ADJ hand/NOUN"
    assert (start, end) == ("0.0", "0.0")


def test_rare_combinations_are_rare_in_train_only():
    def rate(split: str) -> float:
        rng = np.random.default_rng(1)
        return float(np.mean([bool(sample_spec(rng, split).rare_combos()) for _ in range(600)]))

    train, test = rate("train"), rate("test")
    assert train < 0.01 and test > 0.04


def test_compositions_fit_the_length_limits_and_captions_order_phases():
    rng = np.random.default_rng(3)
    kinds = Counter()
    for _ in range(60):
        spec = sample_spec(rng, "train")
        kinds[spec.kind] += 1
        assert 45 <= spec.frames <= 199
        if spec.kind == "sequential":
            text = " ".join(w.text for w in caption_words(spec, rng))
            assert any(k in text for k in ("then", "before", "after"))
    assert set(kinds) == {"single", "simultaneous", "sequential"}
    spec = sample_spec(np.random.default_rng(4), "train")
    joints = build_joints(spec, np.random.default_rng(4))
    assert joints.shape == (spec.frames, 22, 3) and np.isfinite(joints).all()
    assert len(RARE_COMBOS) >= 6
