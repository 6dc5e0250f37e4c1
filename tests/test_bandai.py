"""The Bandai-Namco importer on the sample takes in ../shared (skipped where they are absent)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import SHARED_DATA
from remogpt.data import check_folder, load_captions, read_split_ids
from remogpt.data.bandai import CONTENT_PHRASES, STYLE_WORDS, BandaiError, bandai_captions, find_takes, import_bandai
from remogpt.motion import HUMANML3D
from remogpt.motion.bvh import import_bvh, read_bvh

SAMPLES = SHARED_DATA / "bandai-namco" / "samples"
NAMES = HUMANML3D.joint_names


@pytest.fixture(scope="module")
def samples() -> Path:
    if not (SAMPLES / "Bandai-Namco-Research-Motiondataset-2" / "data").is_dir():
        pytest.skip("the Bandai-Namco samples in ../shared/data/bandai-namco/samples are not available")
    return SAMPLES


@pytest.fixture(scope="module")
def imported(samples: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bandai") / "bandai"
    import_bandai(samples, out, workers=1)
    return out


def test_the_rig_maps_to_smpl_with_a_made_spine2_and_plausible_bones(samples: Path):
    path = samples / "Bandai-Namco-Research-Motiondataset-2" / "data" / "dataset-2_walk_normal_001.bvh"
    imp = import_bvh(path)  # the rig is recognised by its joint names
    assert imp.rig == "bandai" and imp.unit_scale == 0.01 and imp.up_axis == "+y"
    assert imp.mapping["spine3"] == "Chest" and imp.mapping["left_wrist"] == "Hand_L"
    assert imp.mapping["spine2"] == "Spine~Chest@0.5"
    raw = read_bvh(path)
    spine, chest = raw.names.index("Spine"), raw.names.index("Chest")
    made = (raw.positions[:, spine] + raw.positions[:, chest]) / 2 * 0.01
    assert np.allclose(imp.raw_joints[0, NAMES.index("spine2")], made[0], atol=1e-5)  # resampling keeps frame 0
    j = imp.raw_joints  # metres, Y up, before the retargeting
    thigh = np.linalg.norm(j[:, NAMES.index("left_hip")] - j[:, NAMES.index("left_knee")], axis=-1)
    shin = np.linalg.norm(j[:, NAMES.index("left_knee")] - j[:, NAMES.index("left_ankle")], axis=-1)
    assert 0.3 < thigh.mean() < 0.55 and 0.3 < shin.mean() < 0.55 and thigh.std() < 0.01  # a rigid adult leg
    head_height = j[:, NAMES.index("head"), 1] - j[..., 1].min(axis=1)
    assert 1.3 < np.median(head_height) < 1.9
    assert imp.source_fps == pytest.approx(30.0, abs=0.01)
    assert len(j) == pytest.approx((len(raw.positions) - 1) * 2 / 3 + 1, abs=1)  # 30 → 20 fps


def test_import_writes_a_folder_that_data_check_passes(imported: Path):
    report = check_folder(imported, workers=1)
    assert report.ok, report.format()
    info = json.loads((imported / "import.json").read_text())
    assert info["stats"]["takes"] == 8 and info["licence"].startswith("CC BY-NC 4.0")
    card = (imported / "DATA_CARD.md").read_text()
    assert "CC BY-NC 4.0" in card and "Do not redistribute" in card
    for clip in (imported / "new_joints").glob("*.npy"):
        joints = np.load(clip)
        assert abs(joints[..., 1].min()) < 0.05 and 1.2 < joints[:, NAMES.index("head"), 1].max() < 2.2, clip.name
        lengths = np.linalg.norm(joints[:, 1:] - joints[:, list(HUMANML3D.parents[1:])], axis=-1)
        if not clip.name.startswith("M"):  # retargeted to the reference (a mirror has its sides' lengths swapped)
            assert np.allclose(lengths, np.asarray(HUMANML3D.bone_lengths[1:]), atol=2e-3), clip.name
        # SMPL's layout: the hips below the pelvis (the rig has them 109° from the spine, SMPL 139°)
        hip, spine = (joints[:, NAMES.index(n)] - joints[:, 0] for n in ("left_hip", "spine1"))
        cos = (hip * spine).sum(-1) / np.linalg.norm(hip, axis=-1) / np.linalg.norm(spine, axis=-1)
        assert np.degrees(np.arccos(cos)).mean() == pytest.approx(139.1, abs=1.0), clip.name


def test_splits_keep_a_take_its_pieces_and_mirrors_together(imported: Path):
    where: dict[str, str] = {}
    for split in ("train", "val", "test"):
        for clip_id in read_split_ids(imported, split):
            take = clip_id.removeprefix("M").split("_p")[0]
            assert where.setdefault(take, split) == split, clip_id
    assert len(where) == 8
    kick = [i for i in read_split_ids(imported, where["bn1_kick_normal_001"]) if "kick" in i]
    assert len(kick) == 4  # a 9.6 s take: two pieces, each with its mirror


def test_captions_name_the_side_and_mirrors_the_other(imported: Path):
    for take, side, other in (("bn2_wave-left-hand_normal_001", "left", "right"),
                              ("bn2_wave-right-hand_normal_001", "right", "left")):  # fmt: skip
        originals = load_captions(imported / "texts" / f"{take}.txt")
        mirrors = load_captions(imported / "texts" / f"M{take}.txt")
        assert len(originals) >= 3 and len({c.text for c in originals}) == len(originals)
        assert all(side in c.text and other not in c.text for c in originals), originals
        assert all(other in c.text and side not in c.text for c in mirrors), mirrors
        assert all(f"{other}/ADJ" in " ".join(c.tokens) for c in mirrors)
        # …and the motion agrees: the named wrist is the one raised above the head
        joints = np.load(imported / "new_joints" / f"{take}.npy")
        mirrored = np.load(imported / "new_joints" / f"M{take}.npy")
        named, unnamed = NAMES.index(f"{side}_wrist"), NAMES.index(f"{other}_wrist")
        assert joints[:, named, 1].max() > joints[:, unnamed, 1].max() + 0.4
        assert mirrored[:, unnamed, 1].max() > mirrored[:, named, 1].max() + 0.4
    styled = " ".join(c.text for c in load_captions(imported / "texts" / "bn2_raise-up-both-hands_elderly_001.txt"))
    assert "both" in styled and ("old" in styled or "elderly" in styled)


def test_every_label_has_three_distinct_captions_with_part_of_speech_tokens():
    for content in CONTENT_PHRASES:
        for style in STYLE_WORDS:
            lines = bandai_captions(content, style, seed=f"{content}/{style}")
            assert len(set(lines)) == 3, (content, style)
            for line in lines:
                text, tokens, start, end = line.split("#")
                assert text.endswith(".") and all("/" in t for t in tokens.split()) and (start, end) == ("0.0", "0.0")
    assert bandai_captions("kick", "happy", seed=1) == bandai_captions("kick", "happy", seed=1)
    with pytest.raises(BandaiError, match="content 'juggle'"):
        bandai_captions("juggle", "normal", seed=0)


def test_bad_folders_labels_and_files_are_one_clear_error(samples: Path, tmp_path: Path, run_cli):
    with pytest.raises(BandaiError, match="no Bandai-Namco-Research-Motiondataset-1 or -2 folder"):
        find_takes(tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(samples, copy)
    set2 = copy / "Bandai-Namco-Research-Motiondataset-2"
    (set2 / "cfg" / "style_label.txt").unlink()
    result = run_cli("data", "import-bandai", copy, "--out", tmp_path / "out")
    assert result.returncode == 2 and "style_label.txt: label file missing" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()
    shutil.copy2(samples / set2.name / "cfg" / "style_label.txt", set2 / "cfg" / "style_label.txt")
    (set2 / "data" / "dataset-2_run_active_001.json").write_text('{"content": 99, "style": 0}')
    with pytest.raises(BandaiError, match=r"run_active_001\.json: expected"):
        find_takes(copy)
    shutil.copy2(samples / set2.name / "data" / "dataset-2_run_active_001.json", set2 / "data")
    bvh = set2 / "data" / "dataset-2_walk_normal_001.bvh"
    bvh.write_text(bvh.read_text()[:5000])  # truncated in the hierarchy
    result = run_cli("data", "import-bandai", copy, "--out", tmp_path / "out")
    assert result.returncode == 2 and "dataset-2_walk_normal_001.bvh" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()
    assert not (tmp_path / "out.partial").exists()  # nothing half-written is left


def test_cli_imports_and_refuses_to_overwrite(samples: Path, tmp_path: Path, run_cli):
    name = "Bandai-Namco-Research-Motiondataset-1"
    one_set = tmp_path / "set1"
    shutil.copytree(samples / name, one_set / name)
    out = tmp_path / "out"
    result = run_cli("data", "import-bandai", one_set / name, "--out", out)  # a set folder itself
    assert result.returncode == 0, result.stderr
    assert "imported 2 takes" in result.stdout and "do not redistribute" in result.stdout
    again = run_cli("data", "import-bandai", one_set, "--out", out)
    assert again.returncode == 2 and "exists and is not empty" in again.stderr
    assert run_cli("data", "import-bandai", one_set, "--out", out, "--force").returncode == 0
