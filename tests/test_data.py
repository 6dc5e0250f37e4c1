"""The data layer: reference loading rules, normalisation, Dataset/collate, and `data check`."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch

import remogpt.data.check as check_module
from factory import make_folder, object_npy_bytes, write_clip
from remogpt.data import (
    DataFormatError,
    MotionTextDataset,
    Normalizer,
    check_folder,
    collate_motion_text,
    grouped_mean_std,
    load_features,
    load_split,
    open_split,
    parse_caption_line,
    parse_sample_id,
)
from remogpt.motion import HUMANML3D, features_to_joints


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    return make_folder(tmp_path / "hml")


# ---------------------------------------------------------------- loading rules


def test_caption_line_parsing():
    cap = parse_caption_line("a man kicks.#a/DET man/NOUN kick/VERB#1.5#3.0")
    assert (cap.text, cap.tokens, cap.start, cap.end) == (
        "a man kicks.",
        ("a/DET", "man/NOUN", "kick/VERB"),
        1.5,
        3.0,
    )
    assert not cap.is_whole_clip
    assert parse_caption_line("x#x/X#nan#nan").is_whole_clip  # NaN times mean the whole clip (reference)
    with pytest.raises(DataFormatError, match="4 '#'-separated fields"):
        parse_caption_line("a caption without fields", "texts/1.txt:1")


def test_load_split_reference_rules(tmp_path: Path):
    root = tmp_path / "d"
    caps = [
        "whole one#w/X#0.0#0.0",
        "whole two#w/X#0.0#0.0",
        "the middle part#w/X#1.0#4.0",
        "too short#w/X#0.0#1.0",
    ]
    write_clip(root, "000000", 121, seed=0, captions=caps)  # 120 feature frames
    write_clip(root, "000001", 30, seed=1, captions=["short clip#w/X#0.0#0.0"])  # < 40 frames: dropped
    write_clip(root, "000002", 230, seed=2, captions=["long clip#w/X#0.0#0.0"])  # ≥ 200 frames: dropped
    write_clip(root, "000003", 101, seed=3, captions=["only timed#w/X#0.5#3.0"])  # no whole-clip sample
    (root / "train.txt").write_text("000000\n000001\n000002\n000003\n")
    clips = {c.id: c for c in load_split(root, "train")}
    assert set(clips) == {"000000", "000000#1-4", "000003#0.5-3"}
    assert [c.text for c in clips["000000"].captions] == ["whole one", "whole two"]
    segment = clips["000000#1-4"]
    full = load_features(root / "new_joint_vecs" / "000000.npy")
    assert segment.length == 60 and np.array_equal(segment.features, full[20:80])
    assert clips["000003#0.5-3"].length == 50
    assert clips["000000"].mirror_id == "M000000"
    # The sample ids parse back to the frames they were cut from (what retriever and LM rely on).
    for sample_id, clip in clips.items():
        parsed = parse_sample_id(sample_id)
        assert str(parsed) == sample_id and parsed.clip_id == clip.clip_id
        whole = load_features(root / "new_joint_vecs" / f"{clip.clip_id}.npy")
        assert np.array_equal(whole[parsed.frames(20)], clip.features)
    assert parse_sample_id("M000003#0.5-3").family == "000003"
    with pytest.raises(DataFormatError, match="sample id"):
        parse_sample_id("000003#soon-later")


def test_load_features_refuses_bad_files(tmp_path: Path):
    good = np.zeros((50, 263), np.float32)
    cases = {
        "pickle.npy": lambda p: p.write_bytes(object_npy_bytes()),
        "truncated.npy": lambda p: p.write_bytes((lambda b: b[: len(b) // 2])(_npy_bytes(good))),
        "nan.npy": lambda p: np.save(p, np.where(np.arange(263) == 5, np.nan, good)),
        "kit.npy": lambda p: np.save(p, np.zeros((50, 251), np.float32)),
        "three_d.npy": lambda p: np.save(p, np.zeros((50, 22, 3), np.float32)),
        "text.npy": lambda p: p.write_text("not numpy"),
    }
    messages = {
        "pickle.npy": "object array \\(pickled\\)",
        "truncated.npy": "damaged .npy",
        "nan.npy": "NaN/inf",
        "kit.npy": "looks like a kit file",
        "three_d.npy": r"expected shape \(T, D\)",
        "text.npy": "not a .npy file",
    }
    for name, make in cases.items():
        path = tmp_path / name
        make(path)
        with pytest.raises(DataFormatError, match=messages[name]) as info:
            load_features(path, HUMANML3D)
        assert str(path) in str(info.value)


def _npy_bytes(arr: np.ndarray) -> bytes:

    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


# ---------------------------------------------------------------- normalisation


def test_grouped_std_matches_independent_computation():
    rng = np.random.default_rng(0)
    clips = [rng.normal(size=(n, 263)) * rng.uniform(0.1, 3, size=263) for n in (40, 70, 55)]
    mean, std = grouped_mean_std(clips)
    allf = np.concatenate(clips)
    assert np.allclose(mean, allf.mean(0), atol=1e-5)
    plain = allf.std(0)
    bounds = [0, 1, 3, 4, 67, 193, 259, 263]
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        assert np.allclose(std[a:b], plain[a:b].mean(), rtol=1e-5)


def test_normalizer_round_trip_and_computed_stats_are_saved(folder: Path):
    assert not (folder / "Mean.npy").exists()
    ds = open_split(folder, "train")
    assert (folder / "Mean.npy").exists() and (folder / "Std.npy").exists()
    norm = Normalizer.load(folder)
    x = load_features(folder / "new_joint_vecs" / "000000.npy")
    assert np.allclose(norm.denormalize(norm.normalize(x)), x, atol=1e-5)
    t = torch.from_numpy(x)
    assert torch.allclose(norm.denormalize(norm.normalize(t)), t, atol=1e-5)
    # Normalised train features have mean ≈ 0 in every dim.
    feats = np.concatenate([norm.normalize(c.features) for c in ds.clips])
    assert np.abs(feats.mean(0)).max() < 1e-3


# ---------------------------------------------------------------- Dataset and collate


def test_dataset_items_and_collate(folder: Path):
    ds = open_split(folder, "train", captions="random", crop="random", seed=3)
    assert len(ds) == 6
    item = ds[2]
    assert item["length"] % 4 == 0 and item["features"].shape == (item["length"], 263)
    assert item["caption"] in {c.text for c in ds.clips[2].captions}
    again = open_split(folder, "train", captions="random", crop="random", seed=3)[2]
    assert torch.equal(item["features"], again["features"]) and item["caption"] == again["caption"]
    batch = collate_motion_text([ds[i] for i in range(4)])
    lengths = [ds[i]["length"] for i in range(4)]
    assert batch.features.shape == (4, max(lengths), 263)
    assert batch.mask.sum(1).tolist() == lengths
    for b, n in enumerate(lengths):
        assert torch.equal(batch.features[b, :n], ds[b]["features"])
        assert (batch.features[b, n:] == 0).all()


def test_dataset_caption_modes_and_crop(folder: Path):
    all_caps = open_split(folder, "train", captions="all")
    assert len(all_caps) == 12 and {all_caps[0]["caption"], all_caps[1]["caption"]} == {
        c.text for c in all_caps.clips[0].captions
    }
    first = open_split(folder, "test", captions="first", crop="start")
    clip = first.clips[0]
    item = first[0]
    norm = first.normalizer
    assert item["caption"] == clip.captions[0].text
    assert np.allclose(item["features"].numpy(), norm.normalize(clip.features[: item["length"]]), atol=1e-6)
    # Random crops differ across epochs but stay inside the clip.
    ds = open_split(folder, "train", crop="random", seed=0)
    starts = set()
    for epoch in range(8):
        ds.set_epoch(epoch)
        f = ds[5]["features"].numpy()
        full = ds.normalizer.normalize(ds.clips[5].features)
        matches = [s for s in range(len(full) - len(f) + 1) if np.allclose(full[s : s + len(f)], f)]
        assert matches
        starts.add(matches[0])
    assert len(starts) > 1


def test_dataset_rejects_empty_and_mismatched(folder: Path):
    norm = Normalizer(np.zeros(251, np.float32), np.ones(251, np.float32))
    clips = load_split(folder, "train")
    with pytest.raises(DataFormatError, match="do not match the statistics"):
        MotionTextDataset(clips, norm)
    with pytest.raises(DataFormatError, match="no samples"):
        MotionTextDataset([], norm)


# ---------------------------------------------------------------- data check


def test_check_clean_folder_reports_contents(folder: Path):
    report = check_folder(folder)
    assert report.ok, report.format()
    s = report.stats
    assert s["split_ids"] == {"train": 6, "val": 1, "test": 3}
    assert s["clips"] == 10 and s["captions"] == 20
    assert s["samples"] == {"train": 6, "val": 1, "test": 3}
    q = s["quality"]
    assert q["bone_length_spread_max"] < 1e-5 and q["lowest_point_min"] > -1e-6
    assert any(p.path == "Mean.npy" for p in report.warnings)  # statistics not yet computed


def test_check_finds_every_problem(folder: Path, monkeypatch: pytest.MonkeyPatch):
    vec = folder / "new_joint_vecs"
    (vec / "000001.npy").write_bytes(b"\x93NUMPY garbage")  # corrupt
    arr = np.load(vec / "000002.npy")
    arr[3, 7] = np.inf
    np.save(vec / "000002.npy", arr)  # inf
    np.save(vec / "000003.npy", np.zeros((60, 251), np.float32))  # KIT file in a HumanML3D folder
    (folder / "texts" / "000004.txt").write_text("a caption without fields\n")
    (folder / "texts" / "000005.txt").unlink()  # motion without captions
    (folder / "texts" / "999999.txt").write_text("orphan#x/X#0.0#0.0\n")  # captions without motion
    with (folder / "test.txt").open("a") as fh:
        fh.write("123456\n")  # id in a split that does not exist
    joints = np.load(folder / "new_joints" / "000006.npy")
    np.save(folder / "new_joints" / "000006.npy", joints + 0.1)  # disagrees with its features
    report = check_folder(folder)
    assert not report.ok
    # Worker processes check the clips of large folders: the same report, problem for problem.
    monkeypatch.setattr(check_module, "_PARALLEL_MIN_CLIPS", 0)
    parallel = check_folder(folder, workers=2)
    assert parallel.problems == report.problems and parallel.stats == report.stats
    found = {(p.severity, p.path): p.message for p in report.problems}
    assert "damaged .npy" in found[("error", "new_joint_vecs/000001.npy")]
    assert "NaN/inf" in found[("error", "new_joint_vecs/000002.npy")]
    assert "kit" in found[("error", "new_joint_vecs/000003.npy")]
    assert "'#'-separated fields" in found[("error", "texts/000004.txt")]
    assert "no captions" in found[("error", "texts/000005.txt")]
    assert "without a motion" in found[("warning", "texts/999999.txt")]
    assert "listed in test.txt but missing" in found[("error", "new_joint_vecs/123456.npy")]
    assert "differs from the joints recovered" in found[("warning", "new_joints/000006.npy")]
    text = report.format()
    assert "result: FAILED" in text and "new_joint_vecs/000001.npy" in text


def test_check_detects_split_leak_and_bad_stats(tmp_path: Path):
    folder = make_folder(tmp_path / "d", with_stats=True)
    with (folder / "test.txt").open("a") as fh:
        fh.write("000000\n")
    np.save(folder / "Std.npy", np.zeros(263, np.float32))
    report = check_folder(folder)
    messages = " ".join(str(p) for p in report.errors)
    assert "split leak" in messages and "non-positive" in messages


def test_cli_data_check_exit_codes(folder: Path, tmp_path: Path, run_cli):
    ok = run_cli("data", "check", str(folder), "--json", str(tmp_path / "r.json"))
    assert ok.returncode == 0, ok.stderr
    assert "result: OK" in ok.stdout and (tmp_path / "r.json").is_file()
    (folder / "new_joint_vecs" / "000000.npy").write_bytes(b"broken")
    bad = run_cli("data", "check", str(folder))
    assert bad.returncode == 1 and "new_joint_vecs/000000.npy" in bad.stdout
    usage = run_cli("data", "check", str(folder), "--skeleton", "smpl")
    assert usage.returncode == 2 and usage.stderr.strip().startswith("error: --skeleton")
    assert "Traceback" not in usage.stderr


def test_loader_error_names_the_file(folder: Path):
    np.save(folder / "new_joint_vecs" / "000001.npy", np.full((60, 263), np.nan, np.float32))
    with pytest.raises(DataFormatError, match=r"000001\.npy: contains .* NaN"):
        load_split(folder, "train")


def test_recovered_joints_in_folder_match_features(folder: Path):
    feats = np.load(folder / "new_joint_vecs" / "000000.npy")
    joints = np.load(folder / "new_joints" / "000000.npy")
    assert joints.shape == (len(feats), 22, 3)
    assert np.abs(features_to_joints(feats) - joints).max() < 1e-6
