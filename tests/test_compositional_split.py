"""The compositional test split: compositions that no training clip has, while the i.i.d. splits stay as they were."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from remogpt.data import check_folder
from remogpt.data.check import split_overlap
from remogpt.data.synth.compose import (
    HELD_OUT_PAIRS,
    RARE_COMBOS,
    composition_key,
    held_out_atoms,
    mirror_labels,
    sample_compositional_spec,
    sample_spec,
)
from remogpt.data.synth.generate import SynthConfig, synthesize


@pytest.fixture(scope="module")
def comp_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("comp") / "embedded"
    synthesize(out, SynthConfig(clips=160, seed=3, compositional_clips=32), workers=1)
    return out


def _rows(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "labels.jsonl").read_text().splitlines()]


def _ids(root: Path, split: str) -> list[str]:
    return (root / f"{split}.txt").read_text().split()


def test_train_holds_no_held_out_atom_and_no_compositional_composition(comp_dir: Path) -> None:
    rows = _rows(comp_dir)
    train = [r for r in rows if r["split"] == "train"]
    comp = [r for r in rows if r["split"] == "test_compositional"]
    assert len(comp) >= 25 and len(_ids(comp_dir, "test_compositional")) == 2 * len(comp)
    assert all(not held_out_atoms(r) and not held_out_atoms(mirror_labels(r)) for r in train)
    assert all(held_out_atoms(r) for r in comp)
    train_keys = {composition_key(r) for r in train} | {composition_key(mirror_labels(r)) for r in train}
    assert not any(composition_key(r) in train_keys or composition_key(mirror_labels(r)) in train_keys for r in comp)
    # no verbatim caption of the split is in train; the i.i.d. test split does share some (it is i.i.d.)
    overlap = split_overlap(comp_dir)
    assert overlap["test_compositional"]["captions_in_train"] == 0
    assert overlap["test_compositional"]["compositions_in_train"] == 0
    assert overlap["test"]["compositions_in_train"] > 0
    # timed captions only in the i.i.d. splits
    texts = [(comp_dir / "texts" / f"{i}.txt").read_text() for i in _ids(comp_dir, "test_compositional")]
    assert all(line.endswith("#0.0#0.0") for t in texts for line in t.splitlines())


def test_the_check_and_the_card_report_the_split(comp_dir: Path) -> None:
    report = check_folder(comp_dir)
    assert report.ok, report.format()
    assert "test_compositional" in report.stats["split_ids"]
    assert "test_compositional: 0 of" in report.format()
    card = (comp_dir / "DATA_CARD.md").read_text()
    assert "## How much of each split is already in train" in card and "| walk>jump |" in card


def test_iid_splits_are_untouched_by_the_compositional_split(comp_dir: Path, tmp_path: Path) -> None:
    """The same seed without the compositional split (and so without drawing it) gives the same val and test clips."""
    plain = tmp_path / "plain"
    synthesize(plain, SynthConfig(clips=160, seed=3, compositional_clips=0), workers=1)
    assert not (plain / "test_compositional.txt").exists()
    for split in ("val", "test"):
        assert _ids(plain, split) == _ids(comp_dir, split)
        for clip_id in _ids(plain, split):
            for folder, name in (("new_joint_vecs", f"{clip_id}.npy"), ("texts", f"{clip_id}.txt")):
                assert (plain / folder / name).read_bytes() == (comp_dir / folder / name).read_bytes()


def test_val_and_test_draws_keep_their_rng_stream() -> None:
    """Held-out atoms are rejected in train only: a val/test draw takes the same random numbers as before."""
    for i in range(60):
        a, b = np.random.default_rng((0, i)), np.random.default_rng((0, i))
        sample_spec(a, "test")
        sample_spec(b, "test")
        assert a.random() == b.random()
    drawn = [sample_spec(np.random.default_rng((1, i)), "test") for i in range(400)]
    assert any(s.rare_combos() for s in drawn)  # the rare-motion protocol's combinations still reach test
    assert any(s.held_out_atoms() for s in drawn)  # and the i.i.d. test split keeps its natural share of atoms


def test_mirror_labels_is_an_involution_that_swaps_sides() -> None:
    row = {"id": "000001", "primary": "kick:left", "phases": [
        {"base": {"name": "kick", "side": "left", "count": 2}, "overlays": [{"name": "wave", "side": "right"}]},
        {"base": {"name": "circle", "direction": "clockwise"}, "overlays": []},
        {"base": {"name": "turn", "direction": "left", "angle": 90}, "overlays": []},
    ]}  # fmt: skip
    m = mirror_labels(row)
    assert m["id"] == "M000001" and m["primary"] == "kick:right"
    assert m["phases"][0]["base"]["side"] == "right" and m["phases"][0]["overlays"][0]["side"] == "left"
    assert m["phases"][1]["base"]["direction"] == "counterclockwise"
    assert m["phases"][2]["base"]["direction"] == "right"
    assert mirror_labels(m) == row
    assert row["phases"][0]["base"]["side"] == "left"  # the original is not changed


def test_composition_key_ignores_overlay_order_and_style_but_not_counts() -> None:
    a = {
        "phases": [
            {
                "base": {"name": "walk", "speed": "slow"},
                "overlays": [{"name": "wave", "side": "left"}, {"name": "twist", "side": "left", "count": 2}],
            }
        ]
    }
    b = {
        "phases": [
            {
                "base": {"name": "walk", "speed": "fast"},
                "overlays": [{"name": "twist", "side": "left", "count": 2}, {"name": "wave", "side": "left"}],
            }
        ]
    }
    c = json.loads(json.dumps(b))
    c["phases"][0]["overlays"][0]["count"] = 3
    assert composition_key(a) == composition_key(b) != composition_key(c)


def test_every_atom_is_mirror_invariant_and_every_draw_holds_one() -> None:
    seen = set()
    for i in range(150):
        spec = sample_compositional_spec(np.random.default_rng((5, i)))
        row = spec.to_dict()
        assert held_out_atoms(row) and held_out_atoms(mirror_labels({"id": "x", **row})) == held_out_atoms(row)
        seen.update(held_out_atoms(row))
    assert {f"{a}+{b}" for a, b in HELD_OUT_PAIRS} <= seen  # every kind of atom gets drawn
    assert {"clap×3", "punch:both", "walk>jump"} <= seen
    assert not {f"{a}+{b}" for a, b in HELD_OUT_PAIRS} & {f"{a}+{b}" for a, b in RARE_COMBOS}
