"""Typed configs (YAML round trip, strict validation, presets) and run-directory artifacts."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pytest
import torch

from remogpt.artifacts import (
    ArtifactError,
    Manifest,
    StageCache,
    atomic_save_npy,
    hash_folder,
    load_weights,
    read_manifest,
    save_weights,
    write_manifest,
)
from remogpt.config import ConfigBase, ConfigError, DataConfig
from remogpt.data.synth.generate import SynthConfig


@dataclasses.dataclass
class Inner(ConfigBase):
    width: int = 8
    dropout: float = 0.1


@dataclasses.dataclass
class Outer(ConfigBase):
    name: str = "x"
    inner: Inner = dataclasses.field(default_factory=Inner)
    sizes: tuple[int, ...] = (1, 2)
    mode: Literal["a", "b"] = "a"
    path: Path | None = None

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"paper": {"inner": {"width": 512}, "mode": "b"}}


def test_yaml_round_trip(tmp_path: Path):
    cfg = Outer(name="y", inner=Inner(width=3, dropout=0.5), sizes=(4, 5, 6), mode="b", path=Path("/data"))
    cfg.to_yaml(tmp_path / "c.yaml")
    back = Outer.from_yaml(tmp_path / "c.yaml")
    assert back == cfg and isinstance(back.sizes, tuple) and isinstance(back.path, Path)


def test_presets_and_replace():
    paper = Outer.preset("paper")
    assert paper.inner.width == 512 and paper.inner.dropout == 0.1 and paper.mode == "b"
    assert Outer.preset("tiny") == Outer()
    assert Outer().replace(inner={"dropout": 0.3}).inner == Inner(8, 0.3)
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        Outer.preset("huge")
    assert SynthConfig.preset("paper").clips == 16000 and SynthConfig.preset("tiny").clips == 400


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"nmae": "x"}, "unknown field nmae in Outer"),
        ({"inner": {"widht": 3}}, "unknown field inner.widht"),
        ({"inner": {"width": "wide"}}, "inner.width: expected an integer, got 'wide'"),
        ({"inner": {"width": True}}, "inner.width: expected an integer"),
        ({"mode": "c"}, "mode: 'c' is not one of"),
        ({"sizes": [1, "two"]}, r"sizes\[1\]: expected an integer"),
        ({"inner": 3}, "expected a mapping"),
    ],
)
def test_validation_names_the_field(data: dict, match: str):
    with pytest.raises(ConfigError, match=match):
        Outer.from_dict(data)


def test_yaml_errors_name_the_file(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("inner: {width: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: invalid YAML"):
        Outer.from_yaml(bad)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("inner:\n  dropout: lots\n")
    with pytest.raises(ConfigError, match=r"wrong.yaml: .*inner.dropout: expected a number"):
        Outer.from_yaml(wrong)
    with pytest.raises(ConfigError, match="config file not found"):
        Outer.from_yaml(tmp_path / "missing.yaml")
    assert Inner.from_dict({"dropout": "1e-4"}).dropout == pytest.approx(1e-4)  # YAML reads 1e-4 as text


def test_config_value_checks():
    with pytest.raises(ConfigError, match="unit_length"):
        DataConfig(unit_length=0)
    with pytest.raises(ConfigError, match="clips must be at least 10"):
        SynthConfig(clips=3)


def test_manifest_and_weights_round_trip(tmp_path: Path):
    run = tmp_path / "run"
    tensors = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.ones(3)}
    sha = save_weights(run, tensors)
    manifest = Manifest(stage="tokenizer", config={"width": 8}, data_hash="abc", extra={"weights_sha256": sha})
    write_manifest(run, manifest)
    back = read_manifest(run, stage="tokenizer")
    assert back.config == {"width": 8} and back.data_hash == "abc" and back.versions["torch"] == torch.__version__
    assert back.fingerprint == manifest.fingerprint
    loaded = load_weights(run)
    assert torch.equal(loaded["w"], tensors["w"]) and torch.equal(loaded["b"], tensors["b"])
    changed = Manifest(stage="tokenizer", config={"width": 9}, data_hash="abc", extra={"weights_sha256": sha})
    assert changed.fingerprint != manifest.fingerprint


def test_training_only_fields_leave_the_fingerprint_alone():
    """A tokenizer saved after its loss-only weights became config fields keeps the fingerprint of the same
    weights saved before they existed (so results keyed on it stay valid); a field that shapes the model,
    or the weights, still changes it, and other stages are unaffected."""
    extra = {"weights_sha256": "ab" * 32}
    before = Manifest(stage="tokenizer", config={"width": 8}, data_hash="d", extra=extra)
    after = Manifest(stage="tokenizer", config={"width": 8, "heading_weight": 0.0, "aligned_joint_weight": 0.0},
                     data_hash="d", extra=extra)  # fmt: skip
    assert after.fingerprint == before.fingerprint
    assert (
        Manifest(stage="tokenizer", config={"width": 9}, data_hash="d", extra=extra).fingerprint != before.fingerprint
    )
    other_weights = Manifest(stage="tokenizer", config=after.config, data_hash="d", extra={"weights_sha256": "cd" * 32})
    assert other_weights.fingerprint != after.fingerprint
    lm = Manifest(stage="lm", config={"width": 8, "heading_weight": 0.0}, data_hash="d", extra=extra)
    assert lm.fingerprint != Manifest(stage="lm", config={"width": 8}, data_hash="d", extra=extra).fingerprint


def test_fields_added_at_their_neutral_value_leave_keys_alone():
    """An LM saved after guidance and text dropout became config fields keeps its fingerprint while they
    hold the values that change nothing; any other value changes it."""
    from remogpt.artifacts import fingerprint_config

    extra = {"weights_sha256": "ab" * 32}
    before = Manifest(stage="lm", config={"d_model": 8}, data_hash="d", extra=extra)
    after = Manifest(stage="lm", config={"d_model": 8, "text_dropout": 0.0, "guidance_scale": 1.0,
                                         "scheduled_sampling": 0.0}, data_hash="d", extra=extra)  # fmt: skip
    assert after.fingerprint == before.fingerprint
    for field, value in (("text_dropout", 0.1), ("guidance_scale", 2.0), ("scheduled_sampling", 0.25)):
        changed = Manifest(stage="lm", config={**after.config, field: value}, data_hash="d", extra=extra)
        assert changed.fingerprint != before.fingerprint, field
        assert fingerprint_config("lm", changed.config)[field] == value
    assert fingerprint_config("tokenizer", {"text_dropout": 0.0}) == {"text_dropout": 0.0}  # per stage


def test_artifact_errors(tmp_path: Path):
    with pytest.raises(ArtifactError, match=r"no manifest\.json"):
        read_manifest(tmp_path)
    write_manifest(tmp_path, Manifest(stage="retriever", config={}))
    with pytest.raises(ArtifactError, match="holds a 'retriever' artifact, expected 'lm'"):
        read_manifest(tmp_path, stage="lm")
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        read_manifest(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(ArtifactError, match="unreadable safetensors"):
        load_weights(tmp_path)
    with pytest.raises(ArtifactError, match="weights not found"):
        load_weights(tmp_path / "nowhere")


def test_hash_folder_tracks_content(tmp_path: Path):
    (tmp_path / "texts").mkdir()
    (tmp_path / "train.txt").write_text("a\n")
    atomic_save_npy(tmp_path / "Mean.npy", np.zeros(3))
    h1 = hash_folder(tmp_path)
    assert hash_folder(tmp_path) == h1
    atomic_save_npy(tmp_path / "Mean.npy", np.ones(3))
    assert hash_folder(tmp_path) != h1
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files
    json.dumps(Manifest(stage="x", config={"p": Path("a")}).to_json())


def test_hash_folder_reuses_a_settled_hash_until_a_file_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import time

    import remogpt.artifacts as artifacts

    (tmp_path / "train.txt").write_text("abc\n")
    (tmp_path / "test.txt").write_text("xyz\n")
    calls = []
    real = artifacts.hash_files
    monkeypatch.setattr(artifacts, "hash_files", lambda *a, **k: calls.append(1) or real(*a, **k))
    fresh = hash_folder(tmp_path)
    assert hash_folder(tmp_path) == fresh and len(calls) == 2  # files written just now: not remembered
    later = time.time_ns() + 10_000_000_000
    monkeypatch.setattr(artifacts.time, "time_ns", lambda: later)  # the same files, seconds later
    assert hash_folder(tmp_path) == fresh and hash_folder(tmp_path) == fresh and len(calls) == 3
    time.sleep(0.05)  # beyond the file clock's granularity
    (tmp_path / "train.txt").write_text("abd\n")  # same size, same inode, new content
    changed = hash_folder(tmp_path)
    assert changed != fresh and len(calls) == 4
    assert changed == real([tmp_path / "train.txt", tmp_path / "test.txt"], tmp_path)


def test_stage_cache_reuses_resumes_retrains_or_refuses(tmp_path: Path):
    stage = tmp_path / "tokenizer"
    settings = {"steps": 10, "lr": 1e-3}
    lines: list[str] = []
    retrain = StageCache("retrain", lines.append)
    assert retrain.state(stage, settings, "d1") == "new"
    StageCache.record(stage, settings)
    (stage / "checkpoints").mkdir()
    assert retrain.state(stage, settings, "d1") == "resume"  # same settings, not finished
    write_manifest(stage, Manifest(stage="tokenizer", config=settings, data_hash="d1"))
    assert retrain.state(stage, settings, "d1") == "done"
    assert retrain.state(stage, settings) == "done"  # no data hash given: settings alone decide
    assert StageCache("refuse").state(stage, {"steps": 10, "lr": 1e-3}, "d1") == "done"
    with pytest.raises(ArtifactError, match="made with other settings"):
        StageCache("refuse").state(stage, {"steps": 20, "lr": 1e-3}, "d1")
    with pytest.raises(ArtifactError, match="made with other data"):
        StageCache("refuse").state(stage, settings, "d2")
    assert stage.is_dir()  # refusing deletes nothing
    assert retrain.state(stage, settings, "d2") == "new" and not stage.exists()
    assert lines == [f"      {stage} was made with other data; training it again"]
    # A folder from before settings were recorded, or with a damaged record, is not reused.
    stage.mkdir()
    write_manifest(stage, Manifest(stage="tokenizer", config=settings, data_hash="d1"))
    (stage / "stage_settings.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="other settings"):
        StageCache("refuse").state(stage, settings, "d1")
    assert StageCache("retrain", lambda _m: None).state(stage, settings, "d1") == "new"
    # The caller decides when a stage is finished (the retriever: weights and its index).
    StageCache.record(stage, settings)
    write_manifest(stage, Manifest(stage="retriever", config=settings, data_hash="d1"))
    has_index = lambda d: (d / "index").is_dir()  # noqa: E731
    assert retrain.state(stage, settings, "d1", finished=has_index) == "resume"
    (stage / "index").mkdir()
    assert retrain.state(stage, settings, "d1", finished=has_index) == "done"
    with pytest.raises(ValueError, match="policy"):
        StageCache("keep")
