"""Settings that mean what they say: a flag beats the YAML, the YAML beats the preset, for every
`train` verb; `--resume` refuses other settings in one line naming the first differing field, and
`--force` retrains."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from factory import MICRO_LM, micro_tokenizer_config


class _CapturedError(Exception):
    """Raised by a stand-in training function: the command's config, and nothing trained."""

    def __init__(self, *args: Any) -> None:
        super().__init__("captured")
        self.args_seen = args


def _capture(monkeypatch: pytest.MonkeyPatch, module: str, name: str) -> None:
    import importlib

    def stand_in(*args: Any, **kwargs: Any) -> None:
        raise _CapturedError(*args, *kwargs.values())

    monkeypatch.setattr(importlib.import_module(module), name, stand_in)


def _run(run_cli: Any, *args: str) -> tuple[Any, ...]:
    with pytest.raises(_CapturedError) as caught:
        run_cli(*args)
    return caught.value.args_seen


def _yaml(tmp_path: Path, data: dict[str, Any]) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return str(path)


# (verb, the module and function it calls, YAML fields, flags, how to read (data root, seed, steps) from the call)
def _stage_reader(args: tuple[Any, ...]) -> tuple[str, int, int]:
    cfg = args[0]
    return str(cfg.data.root), cfg.trainer.seed, cfg.trainer.max_steps


def _lm_reader(args: tuple[Any, ...]) -> tuple[str, int, int]:
    cfg = args[0]
    return str(cfg.data.root), cfg.trainer.seed, cfg.stage2_steps


def _eval_reader(args: tuple[Any, ...]) -> tuple[str, int, int]:
    data, _out, cfg, tcfg = args[:4]
    return str(data), tcfg.seed, cfg.max_steps


VERBS = {
    "tokenizer": ("remogpt.tokenizer.train", "train_tokenizer", _stage_reader,
                  {"data": {"root": "yaml_data"}, "trainer": {"seed": 7, "max_steps": 33}},
                  ["--data", "flag_data", "--seed", "9", "--max-steps", "44"]),
    "retriever": ("remogpt.retrieval.train", "train_retriever", _stage_reader,
                  {"data": {"root": "yaml_data"}, "trainer": {"seed": 7, "max_steps": 33}},
                  ["--data", "flag_data", "--seed", "9", "--max-steps", "44"]),
    "lm": ("remogpt.lm.train", "train_lm", _lm_reader,
           {"data": {"root": "yaml_data"}, "trainer": {"seed": 7}, "stage2_steps": 33},
           ["--data", "flag_data", "--seed", "9", "--stage2-steps", "44"]),
}  # fmt: skip


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_a_flag_beats_the_yaml_and_the_yaml_beats_the_defaults(verb: str, tmp_path: Path, run_cli: Any,
                                                               monkeypatch: pytest.MonkeyPatch):  # fmt: skip
    module, name, read, fields, flags = VERBS[verb]
    _capture(monkeypatch, module, name)
    config = _yaml(tmp_path, fields)
    out = ["--out", str(tmp_path / "run")]
    defaults = _run(run_cli, "train", verb, *out)
    assert read(defaults)[:2] == ("data/embedded", 0)
    assert read(_run(run_cli, "train", verb, *out, "--config", config)) == ("yaml_data", 7, 33)
    assert read(_run(run_cli, "train", verb, *out, "--config", config, *flags)) == ("flag_data", 9, 44)
    # One flag alone changes only itself; the YAML's other fields stay.
    assert read(_run(run_cli, "train", verb, *out, "--config", config, "--seed", "9")) == ("yaml_data", 9, 33)


@pytest.mark.parametrize(("verb", "module", "name"), [
    ("evaluator", "remogpt.eval.train_evaluator", "train_evaluator"),
    ("judge", "remogpt.eval.train_judge", "train_judge"),
])  # fmt: skip
def test_the_evaluators_take_flags_over_their_yaml(verb: str, module: str, name: str, tmp_path: Path, run_cli: Any,
                                                   monkeypatch: pytest.MonkeyPatch):  # fmt: skip
    """The evaluator's and the judge's YAML hold their model and steps; data and seed are flags."""
    _capture(monkeypatch, module, name)
    config = _yaml(tmp_path, {"max_steps": 33, "lr": 0.01})
    out = ["--out", str(tmp_path / verb)]
    _, _, cfg, tcfg = _run(run_cli, "train", verb, *out, "--config", config)[:4]
    assert (cfg.max_steps, cfg.lr, tcfg.max_steps, tcfg.seed, tcfg.accelerator) == (33, 0.01, 33, 0, "auto")
    _, _, cfg, tcfg = _run(run_cli, "train", verb, *out, "--config", config, "--max-steps", "44", "--seed", "9")[:4]
    assert (cfg.max_steps, cfg.lr, tcfg.max_steps, tcfg.seed) == (44, 0.01, 44, 9)


def test_the_yaml_goes_over_the_named_preset(tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch):
    from remogpt.lm import LMConfig

    _capture(monkeypatch, "remogpt.lm.train", "train_lm")
    config = _yaml(tmp_path, {"stage2_steps": 33})
    (cfg,) = _run(run_cli, "train", "lm", "--preset", "paper", "--config", config)[:1]
    paper = LMConfig.preset("paper")
    assert (cfg.d_model, cfg.stage2_steps) == (paper.d_model, 33) and paper.stage2_steps != 33


def test_layered_config_reads_old_field_names_and_reports_the_file(tmp_path: Path):
    from remogpt.config import ConfigError, layered_config
    from remogpt.retrieval import RetrieverConfig

    old = _yaml(tmp_path, {"train": {"seed": 5}})  # the retriever's trainer settings were once `train`
    cfg = layered_config(RetrieverConfig, "tiny", old, {"trainer": {"seed": None, "max_steps": 3}})
    assert (cfg.trainer.seed, cfg.trainer.max_steps) == (5, 3)
    bad = _yaml(tmp_path, {"trainer": {"sed": 5}})
    with pytest.raises(ConfigError, match=r"config\.yaml: unknown field trainer\.sed"):
        layered_config(RetrieverConfig, None, bad, {})


def test_first_difference_names_the_dotted_field():
    from remogpt.training import first_difference, training_settings

    old = {"lr": 1e-3, "model": {"width": 32, "depth": 2}, "trainer": {"seed": 0}}
    assert first_difference(old, json.loads(json.dumps(old))) is None
    assert first_difference(old, {**old, "model": {"width": 32, "depth": 3}}) == ("model.depth", 2, 3)
    assert first_difference(old, {**old, "extra": 1}) == ("extra", "(absent)", 1)
    assert first_difference(old, {"lr": 1e-3, "model": old["model"]}) == ("trainer", {"seed": 0}, "(absent)")
    assert first_difference(old, {**old, "lr": 2e-3}, allow={"lr"}) is None
    plain = training_settings({"data": {"root": "x"}, "trainer": {"devices": "2", "seed": 1}, "top_k": 3},
                              ignore={"top_k"})  # fmt: skip
    assert plain == {"data": {"root": str(Path("x").resolve())}, "trainer": {"seed": 1}}  # placement left out


def test_resume_with_other_settings_is_one_line_and_force_retrains(micro_run: Path, embedded_small: Path,
                                                                   tmp_path: Path, run_cli: Any):  # fmt: skip
    run = tmp_path / "run"
    shutil.copytree(micro_run / "tokenizer", run / "tokenizer")
    done = json.loads((run / "tokenizer" / "manifest.json").read_text())["extra"]["steps"]
    same = micro_tokenizer_config(embedded_small, done + 1)
    other = same.replace(lr=same.lr * 2)
    paths = {}
    for name, cfg in (("same", same), ("other", other)):
        paths[name] = tmp_path / f"{name}.yaml"
        cfg.to_yaml(paths[name])
    code, _, err = run_cli("train", "tokenizer", "--config", paths["other"], "--out", run, "--resume")
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err
    assert f"lr={other.lr!r}" in errors[0] and f"lr={same.lr!r}" in errors[0] and "--force" in errors[0], errors
    # More steps with the same settings continue the training.
    code, out, err = run_cli("train", "tokenizer", "--config", paths["same"], "--out", run, "--resume")
    assert code == 0 and f"after resuming at step {done}" in out, err
    # --force with --resume contradicts itself; --force alone trains from scratch.
    code, _, err = run_cli("train", "tokenizer", "--config", paths["other"], "--out", run, "--resume", "--force")
    assert code == 2 and "give one of them" in err
    code, out, err = run_cli("train", "tokenizer", "--config", paths["other"], "--out", run, "--force")
    assert code == 0 and "resuming" not in out and f"deleted {run / 'tokenizer'}" in err, (out, err)
    record = json.loads((run / "tokenizer" / "train_settings.json").read_text())
    assert record["stage"]["lr"] == other.lr and record["trainer"]["max_steps"] == done + 1


def test_force_deletes_only_a_training_folder(tmp_path: Path):
    from remogpt.artifacts import ArtifactError, clear_for_retraining

    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(ArtifactError, match="not one"):
        clear_for_retraining(mine)
    assert (mine / "thesis.tex").is_file()
    assert clear_for_retraining(tmp_path / "absent") is False


def test_a_finished_lm_stage_is_reused_only_under_resume_with_its_settings(micro_run: Path, embedded_small: Path,
                                                                           tmp_path: Path):  # fmt: skip
    from remogpt.artifacts import ArtifactError
    from remogpt.lm import train_lm
    from remogpt.training import SettingsMismatchError

    run = tmp_path / "run"
    shutil.copytree(micro_run, run, symlinks=True)
    cfg = MICRO_LM.replace(data={"root": str(embedded_small)})
    with pytest.raises(ArtifactError, match=r"stage1: holds a finished training; reuse it with --resume"):
        train_lm(cfg, run)
    with pytest.raises(SettingsMismatchError, match=r"stage1: --resume asks for dropout_rate=0\.3"):
        train_lm(cfg.replace(dropout_rate=0.3), run, resume=True)
    # Other stage-2 settings leave stage 1 reusable and are refused by stage 2.
    other = cfg.retrieval.gold_rate / 2
    with pytest.raises(SettingsMismatchError, match=rf"stage2: --resume asks for retrieval.gold_rate={other}"):
        train_lm(cfg.replace(retrieval={"gold_rate": other}), run, resume=True)
    lines: list[str] = []
    train_lm(cfg.replace(top_k=3), run, resume=True, log=lines.append)  # a sampling default only
    assert sum("reused the finished stage" in line for line in lines) == 2, lines
