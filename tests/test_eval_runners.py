"""The evaluation runners, their reports and the ablation, on a micro pipeline trained once for the module.

The ablation (micro budgets, one seed, three variants) trains the tokenizer, evaluator, both
retrievers and the language models; the runner tests then evaluate its runs. The small embedded
set's test split has 24 samples, fewer than one R-Precision batch, so text-to-motion runs on a
subset of the train split here (that is also what the too-few-samples error is tested with).
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from remogpt.artifacts import ArtifactError
from remogpt.eval import EvalInputError, ProtocolResult, ResultError, retrieval_metrics
from remogpt.eval.ablation import AblationConfig, AblationError, claim_verdict, paired_difference, run_ablation
from remogpt.eval.reports import format_value, t2m_markdown
from remogpt.eval.runners import (
    COPY_M2T,
    COPY_T2M,
    COPY_T2T,
    T2M_METRICS,
    TOKENIZER_ROUNDTRIP,
    eval_m2t,
    eval_rare,
    eval_retrieval,
    eval_t2m,
    mean_interval,
    reference_crop,
    summarize_repeats,
)

CHANCE_TOP3 = 3 / 32
MICRO: dict[str, Any] = {
    "seeds": [0], "variants": ["none", "both_k1", "both_wb"], "split": "train", "rare_split": "test",
    "num_prompts": 32, "tokenizer_steps": 40, "evaluator_steps": 80, "retriever_steps": 20, "lm_stage1_steps": 40,
    "lm_stage2_steps": 15,
    "tokenizer": {"model": {"width": 32, "code_dim": 16, "codebook_size": 64, "depth": 2}, "window": 32, "lr": 2e-3,
                  "warmup_steps": 5, "lr_milestones": [], "val_clips": 0,
                  "trainer": {"batch_size": 16, "checkpoint_every_n_steps": 1000, "log_every_n_steps": 10}},
    "evaluator": {"dim_word": 16, "dim_movement_enc_hidden": 32, "dim_movement_latent": 32, "dim_motion_hidden": 32,
                  "dim_text_hidden": 32, "dim_coemb_hidden": 16, "lr": 5e-3},
    "retriever": {"motion": {"width": 32, "layers": 1, "heads": 2}, "latent_dim": 64, "lr": 2e-3, "warmup_steps": 5,
                  "trainer": {"batch_size": 32, "log_every_n_steps": 10, "checkpoint_every_n_steps": 1000}},
    "lm": {"d_model": 64, "d_ff": 128, "num_layers": 2, "num_decoder_layers": 2, "num_heads": 2, "d_kv": 32,
           "text_vocab_size": 400, "lr": 3e-3, "stage2_lr": 2e-3, "dropout_rate": 0.0, "trainer": {"batch_size": 16}},
    "accelerator": "cpu", "devices": "1",
    "repeats": 1, "diversity_times": 10, "mm_texts": 4, "mm_generations": 3, "mm_times": 2,
    "m2t_prompts": 32, "m2t_repeats": 2, "rare_repeats": 1,
}  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ablation(embedded_small: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The whole ablation with micro budgets (about 40 s on one core)."""
    torch.set_num_threads(1)
    work = tmp_path_factory.mktemp("ablation")
    report = run_ablation(embedded_small, work, out_md=work / "tables" / "paper_tables.md",
                          config=AblationConfig.from_dict(MICRO), log=lambda _m: None)  # fmt: skip
    return work, report


@pytest.fixture(scope="module")
def run(ablation: tuple[Path, dict[str, Any]]) -> Path:
    return ablation[0] / "seed0" / "runs" / "both_k1"


@pytest.fixture(scope="module")
def evaluator(ablation: tuple[Path, dict[str, Any]]) -> Path:
    return ablation[0] / "evaluator"


# ----------------------------------------------------------------------------- pure parts


def test_interval_is_the_reference_formula():
    values = np.random.default_rng(3).normal(2.0, 0.5, size=20)
    got = mean_interval(values)
    # Independent: population standard deviation (the reference's np.std), 1.96·σ/√n.
    expected = 1.96 * statistics.pstdev(values.tolist()) / math.sqrt(len(values))
    assert got["mean"] == pytest.approx(statistics.fmean(values.tolist()), rel=1e-12)
    assert got["interval"] == pytest.approx(expected, rel=1e-12)
    assert mean_interval([4.0])["interval"] == 0.0
    rows = summarize_repeats([{"FID": 1.0, "MModality": None}, {"FID": 3.0, "MModality": None}])
    assert rows["MModality"] is None and rows["FID"]["mean"] == 2.0
    assert rows["FID"]["interval"] == pytest.approx(1.96 * 1.0 / math.sqrt(2))
    with pytest.raises(EvalInputError, match="no values"):
        mean_interval([])


def test_markdown_prints_mean_and_interval_and_names_the_protocol():
    entry = mean_interval([0.48, 0.52])
    assert format_value(entry) == f"0.500 ± {entry['interval']:.3f}"
    assert format_value(mean_interval([0.5])) == "0.500" and format_value(None) == "–"
    rows = {name: {m: entry for m in T2M_METRICS} for name in ("Real", "ReMoGPT")}
    rows["Real"]["MModality"] = None
    result = {"protocol": "text-to-motion, Guo et al. 2022", "label": "ReMoGPT", "run_dir": "runs/x", "retrieval": {
              "modality": "both", "k": 1}, "evaluator": {"dir": "runs/ev"}, "split": "test", "samples_per_repeat": 64,
              "samples": 70,
              "caption": "random", "repeats": 2, "repeat_seeds": [0, 1], "diversity_times": 300,
              "mmodality": {"texts": 100, "generations": 30, "times": 10}, "interval": "mean ± 1.96·σ/√repeats",
              "rows": rows}  # fmt: skip
    md = t2m_markdown(result)
    assert "Guo et al. 2022" in md and "| Methods | R-Precision Top-1 ↑ | Top-2 ↑ | Top-3 ↑ | FID ↓" in md
    real = next(line for line in md.splitlines() if line.startswith("| Real"))
    assert real.count("0.500 ± ") == 6 and real.endswith("| – |")
    assert "100 texts × 30 generations" in md and "seeds 0, 1" in md


def test_reference_crop_follows_the_loader():
    rng = np.random.RandomState(0)
    features = np.arange(63 * 2, dtype=np.float32).reshape(63, 2)
    lengths = []
    for _ in range(600):
        crop = reference_crop(features, rng)
        lengths.append(len(crop))
        start = int(crop[0, 0]) // 2
        assert np.array_equal(crop, features[start : start + len(crop)])
    assert set(lengths) == {56, 60}  # 63 → 60 frames, one unit (4) shorter a third of the time
    assert lengths.count(56) / len(lengths) == pytest.approx(1 / 3, abs=0.06)


# ----------------------------------------------------------------------------- runners


def test_t2m_runner_keys_values_and_real_row(run: Path, evaluator: Path, embedded_small: Path):
    result = eval_t2m(run, embedded_small, evaluator, repeats=2, num_prompts=64, split="train", diversity_times=20,
                      mm_texts=4, mm_generations=3, mm_times=2, seed=5)  # fmt: skip
    assert set(result["rows"]) == {"Real", "ReMoGPT", COPY_T2M, COPY_T2T, TOKENIZER_ROUNDTRIP}
    assert result["samples_per_repeat"] == 64
    assert result["repeat_seeds"] == [5, 6] and result["retrieval"]["modality"] == "both"
    model = result["rows"]["ReMoGPT"]
    # the copy rate: a share, and codes identical to a context motion's are also at the same offset
    assert 0 <= model["CopyRate"]["mean"] <= model["CodeOverlap"]["mean"] <= 1
    for name, row in result["rows"].items():
        assert set(row) == set(T2M_METRICS) | ({"CopyRate", "CodeOverlap"} if name == "ReMoGPT" else set())
        for metric, entry in ((m, row[m]) for m in T2M_METRICS):
            if name != "ReMoGPT" and metric == "MModality":
                assert entry is None
                continue
            values = np.array(entry["values"])
            assert len(values) == 2 and np.isfinite(values).all()
            assert entry["interval"] == pytest.approx(1.96 * values.std() / math.sqrt(2))
        tops = [row[f"top{k}"]["mean"] for k in (1, 2, 3)]
        assert 0 <= tops[0] <= tops[1] <= tops[2] <= 1 and row["FID"]["mean"] >= 0
    real = result["rows"]["Real"]
    assert real["top3"]["mean"] > CHANCE_TOP3  # the evaluator matches real pairs better than chance
    # On the train split the database holds these very captions: text→text finds the clip itself.
    copy = result["rows"][COPY_T2T]
    assert copy["top1"]["mean"] >= 0.8 * real["top1"]["mean"] and copy["FID"]["mean"] < 1.0
    assert real["FID"]["mean"] < result["rows"]["ReMoGPT"]["FID"]["mean"]  # real crops stay close to real motions
    invalid = result["invalid"]
    assert invalid["sequences"] >= 2 * 64 + 2 * 12 and invalid["samples"] == 2 * 64 + 2 * 12
    assert 0 <= invalid["invalid_fraction"] <= 1 and all("0" not in k for k in invalid["by_kind"])
    again = eval_t2m(run, embedded_small, evaluator, repeats=1, num_prompts=64, split="train", diversity_times=20,
                     mmodality=False, seed=5)  # fmt: skip
    for metric in ("top1", "FID", "MMDist", "Diversity"):  # seeded: repeat 0 is the same motions and draws
        assert again["rows"]["ReMoGPT"][metric]["values"][0] == pytest.approx(
            result["rows"]["ReMoGPT"][metric]["values"][0], rel=1e-6)  # fmt: skip
    # The micro tokenizer loses detail: its round trip is farther from the real motions than they are.
    assert result["rows"][TOKENIZER_ROUNDTRIP]["FID"]["mean"] > real["FID"]["mean"]
    # The typed view reads the same numbers, through a JSON round trip, and names what is missing.
    view = ProtocolResult.from_dict(json.loads(json.dumps(result)))
    assert view.task == "t2m" and set(view.rows) == set(result["rows"])
    assert view.mean("ReMoGPT", "FID") == result["rows"]["ReMoGPT"]["FID"]["mean"]
    assert view.row("Real")["top1"].values == tuple(result["rows"]["Real"]["top1"]["values"])
    assert view.mean("Real", "MModality") is None
    assert view.invalid["ReMoGPT"].samples_failed == invalid["samples_failed"]
    with pytest.raises(ResultError, match="no row 'Nope'"):
        view.mean("Nope", "FID")
    with pytest.raises(ResultError, match="no field 'rows'"):
        ProtocolResult.from_dict({"task": "t2m"})


def test_tokenizer_roundtrip_row_scores_the_real_rows_crops(
    run: Path, evaluator: Path, embedded_small: Path, monkeypatch: pytest.MonkeyPatch
):
    """With a lossless tokenizer the round-trip row is the Real row, number for number: the same crops."""
    from remogpt.lm import ReMoGPT

    model = ReMoGPT.from_pretrained(run, data_root=embedded_small)
    monkeypatch.setattr(model.tokenizer, "reconstruct", lambda features, layers=1: torch.as_tensor(features))
    result = eval_t2m(run, embedded_small, evaluator, repeats=1, num_prompts=32, split="train", diversity_times=10,
                      mmodality=False, seed=3, model=model)  # fmt: skip
    for metric in ("top1", "top3", "FID", "MMDist", "Diversity"):
        assert result["rows"][TOKENIZER_ROUNDTRIP][metric]["mean"] == pytest.approx(
            result["rows"]["Real"][metric]["mean"], rel=1e-6, abs=1e-9)  # fmt: skip
    without = eval_t2m(run, embedded_small, evaluator, repeats=1, num_prompts=32, split="train", diversity_times=10,
                       mmodality=False, seed=3, model=model, copy_baselines=False, rerank=2)  # fmt: skip
    assert set(without["rows"]) == {"Real", "ReMoGPT"}
    assert (result["rerank_candidates"], without["rerank_candidates"]) == (1, 2)  # best of 2: recorded


def test_m2t_runner(run: Path, evaluator: Path, embedded_small: Path, monkeypatch: pytest.MonkeyPatch):
    result = eval_m2t(run, embedded_small, evaluator, bertscore=False, repeats=3, num_prompts=32, split="train")
    gen, real = result["rows"]["ReMoGPT"], result["rows"]["Real"]
    for key in ("BLEU@1", "BLEU@4", "ROUGE_L", "CIDEr"):
        assert 0 <= gen[key]["mean"] <= 100 * 10 and real[key] is None  # CIDEr can exceed 100; never negative
    assert gen["BERTScore"] is None and result["bertscore_model"] is None and result["decoding"] == "greedy"
    assert gen["Length_avg"]["mean"] > 0 and real["Length_avg"]["mean"] > 2
    assert real["top3"]["mean"] > CHANCE_TOP3 and len(real["top1"]["values"]) == 3
    assert len(result["examples"]) == 10 and result["examples"][0]["references"]
    # The copy row, recomputed independently: the retriever's top-1 caption of every motion, scored.
    from remogpt.data import load_split
    from remogpt.eval.captions import caption_metrics
    from remogpt.retrieval import Retriever

    clips = sorted(load_split(embedded_small, "train"), key=lambda c: c.id)
    chosen = [clips[i] for i in sorted(np.random.RandomState(0).choice(len(clips), 32, replace=False))]
    found = Retriever.from_pretrained(run).search(motion=[c.features for c in chosen], k=1, target="text")
    expected = caption_metrics([f.captions[0] for f in found], [[x.text for x in c.captions] for c in chosen],
                               bertscore=False)  # fmt: skip
    copy = result["rows"][COPY_M2T]
    assert copy["BLEU@4"]["mean"] == pytest.approx(expected["BLEU@4"]) and copy["CIDEr"]["mean"] == pytest.approx(
        expected["CIDEr"])  # fmt: skip
    assert copy["BERTScore"] is None and 0 <= copy["top1"]["mean"] <= copy["top3"]["mean"] <= 1

    from remogpt.lm import ReMoGPT

    original = ReMoGPT.caption
    monkeypatch.setattr(ReMoGPT, "caption", lambda self, motions, **kw: original(self, motions, **kw)[:-1])
    with pytest.raises(EvalInputError, match="31 generated captions for 32 motions"):
        eval_m2t(run, embedded_small, evaluator, bertscore=False, repeats=1, num_prompts=32, split="train")


def test_retrieval_runner_matches_the_metrics(ablation: tuple[Path, dict[str, Any]], embedded_small: Path):
    from remogpt.data import load_split
    from remogpt.retrieval import Retriever

    retriever_dir = ablation[0] / "seed0" / "retrievers" / "pl"
    result = eval_retrieval(retriever_dir, embedded_small, seed=0, split="test")
    assert result["label"] == "PL-TMR" and result["samples"] == 24 and result["motion_params"] > 0
    assert result["metrics"]["small_batches"] is None and "needs at least 32" in result["metrics"]["small_batches_note"]
    clips = sorted(load_split(embedded_small, "test"), key=lambda c: c.id)
    r = Retriever.from_pretrained(retriever_dir, load_index=False)
    sim = r.embed_text([c.captions[0].text for c in clips]) @ r.embed_motion([c.features for c in clips]).T
    assert result["metrics"]["all"] == retrieval_metrics(sim)
    curve = result["metrics"]["recall_curve"]
    assert curve["k"][0] == 1 and len(curve["t2m"]) == 20 and np.all(np.diff(curve["t2m"]) >= 0)
    assert curve["t2m"][9] == pytest.approx(result["metrics"]["all"]["t2m/R10"], abs=0.01)
    assert curve["m2t"][4] == pytest.approx(result["metrics"]["all"]["m2t/R05"], abs=0.01)


def test_errors_are_one_line_and_say_what_is_needed(run: Path, evaluator: Path, embedded_small: Path,
                                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # fmt: skip
    with pytest.raises(EvalInputError, match=r"at least 32 samples \(one batch\); the test split has 24"):
        eval_t2m(run, embedded_small, evaluator, split="test")
    with pytest.raises(EvalInputError, match="Diversity with 300 pairs needs more than 300 samples per repeat, got 64"):
        eval_t2m(run, embedded_small, evaluator, split="train", num_prompts=64)
    with pytest.raises(EvalInputError, match="more than 10 generations per text, got 10"):
        eval_t2m(run, embedded_small, evaluator, split="train", num_prompts=64, diversity_times=20, mm_generations=10)
    with pytest.raises(EvalInputError, match="at least 32 samples"):
        eval_m2t(run, embedded_small, evaluator, split="test", bertscore=False)
    with pytest.raises(ArtifactError, match=r"stage tokenizer/ is missing \(build it with `remogpt train tokenizer"):
        eval_t2m(run.parent / "nothing", embedded_small, evaluator)
    partial = tmp_path / "partial"
    partial.mkdir()
    for stage in ("tokenizer", "retriever"):
        (partial / stage).symlink_to((run / stage).resolve(), target_is_directory=True)
    with pytest.raises(ArtifactError, match=r"stage lm/ is missing \(build it with `remogpt train lm"):
        eval_rare(partial, embedded_small, evaluator)
    (tmp_path / "tokenizer").mkdir()
    with pytest.raises(ArtifactError, match="no trained evaluator here"):
        eval_t2m(run, embedded_small, tmp_path)

    from remogpt.eval.evaluator import Evaluator

    monkeypatch.setattr(Evaluator, "embed_motions", lambda self, motions, **kw: np.full((len(motions), 16), np.nan))
    with pytest.raises(EvalInputError, match=r"real motions: the evaluator returned \d+ NaN/inf"):
        eval_t2m(run, embedded_small, evaluator, split="train", num_prompts=32, diversity_times=10, mmodality=False)


def test_command_line(run: Path, evaluator: Path, embedded_small: Path, tmp_path: Path,
                      run_cli):  # fmt: skip
    out = tmp_path / "eval"
    code, stdout, _ = run_cli("eval", "t2m", str(run), "--data", str(embedded_small), "--evaluator",
                           str(evaluator), "--repeats", "1", "--num-prompts", "32", "--split", "train",
                           "--no-mmodality", "--diversity-times", "10", "--rerank", "2", "--rerank-by", "captioner",
                           "--out", str(out))  # fmt: skip
    assert code == 0 and "| Real |" in stdout and "Guo et al." in stdout
    saved = json.loads((out / "t2m_train.json").read_text())  # named by split: a test result is not overwritten
    assert (saved["rerank_candidates"], saved["rerank_score"]) == (2, "captioner")
    assert "best of 2 samples by the model's own captioner" in stdout
    assert saved["rows"]["ReMoGPT"]["FID"]["values"]
    assert (out / "t2m_train.md").read_text().startswith("## Text-to-motion")
    code, stdout, _ = run_cli("eval", "retrieval", str(run), "--data", str(embedded_small), "--split", "train",
                           "--out", str(out))  # fmt: skip
    assert code == 0 and "small batches of 32" in stdout and (out / "retrieval_recall.png").stat().st_size > 1000
    code, stdout, _ = run_cli("eval", "rare", str(run), "--data", str(embedded_small), "--evaluator",
                           str(evaluator), "--baseline", str(run.parent / "none"), "--out", str(out))  # fmt: skip
    assert code == 0 and "| Balanced MMDist ↓ |" in stdout and "| no retrieval |" in stdout
    assert (out / "rare_rareness.png").stat().st_size > 1000
    assert json.loads((out / "rare.json").read_text())["top_count"] == 2
    code, _, err = run_cli("eval", "t2m", str(run), "--data", str(embedded_small), "--evaluator", str(evaluator))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "needs at least 32 samples" in err
    code, _, err = run_cli("eval", "m2t", str(tmp_path / "none"), "--data", str(embedded_small))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "is missing" in err


# ----------------------------------------------------------------------------- the ablation


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_ablation_end_to_end(ablation: tuple[Path, dict[str, Any]], embedded_small: Path):
    work, report = ablation
    md_path = work / "tables" / "paper_tables.md"
    md = md_path.read_text()
    for heading in ("## Table 1: text–motion retrieval", "## Table 6: retrieval modality", "## Table 8: rare motions",
                    "## Budgets", "## Wall time per part", "### Seed 0"):  # fmt: skip
        assert heading in md, heading
    assert "Seeds [0]" in md and "train 220 samples" in md and "test 24 samples" in md
    assert "| Both (whole-body retriever) | 1+1 |" in md and "| PL-TMR |" in md and "| text-to-text" in md
    assert "10 rareness ranges" in md and "all-MiniLM-L6-v2" in md
    saved = json.loads(md_path.with_suffix(".json").read_text())
    assert saved["tables"]["table6"].keys() == {"none", "both_k1", "both_wb"}
    assert saved["data"]["train_samples"] == 220 and saved["seeds"] == [0]
    for png in ("paper_tables_recall.png", "paper_tables_rareness.png"):
        assert (md_path.parent / png).stat().st_size > 1000
    t6 = report["tables"]["table6"]
    for name, row in t6.items():
        assert row["t2m/FID"]["mean"] >= 0 and row["m2t/BLEU@4"] is not None, name
    rare = report["per_seed"]["0"]["rare"]
    assert set(rare["rows"]) == {"Real", "ReMoGPT (both, 1+1)", "no retrieval"} and rare["top_count"] == 2
    assert len(rare["per_sample"]["rareness"]) == 24 and min(rare["per_sample"]["rareness"]) >= -1e-6
    assert report["per_seed"]["0"]["table1"]["wb"]["part_level"] is False
    # One stage 1 for every variant; each variant's stage 2 is its own.
    runs = work / "seed0" / "runs"
    variants = ("none", "both_k1", "both_wb")
    weights = {v: _sha(runs / v / "lm" / "stage1" / "model" / "model.safetensors") for v in ("stage1", *variants)}
    assert len(set(weights.values())) == 1
    assert len({_sha(runs / v / "lm" / "model.safetensors") for v in variants}) == 3
    pieces = report["pieces"]
    assert all(p["status"] == "done" and p["seconds"] >= 0 for p in pieces.values())

    # Resumable: a second run reuses every piece and gives the same numbers.
    logs: list[str] = []
    again = run_ablation(embedded_small, work, out_md=None, config=AblationConfig.from_dict(MICRO), log=logs.append)
    assert not [m for m in logs if "training →" in m or "evaluating →" in m]
    assert again["tables"] == report["tables"]
    # Other training budgets in the same work folder are refused, not silently mixed in.
    with pytest.raises(AblationError, match="made with other settings"):
        changed = AblationConfig.from_dict({**MICRO, "lm_stage2_steps": 16})
        run_ablation(embedded_small, work, out_md=None, config=changed, log=lambda _m: None)
    with pytest.raises(Exception, match="unknown variants"):
        AblationConfig.from_dict({"variants": ["sideways"]})
    # The claims section: with one seed every "better" claim is undecided, never silently "reproduced".
    assert "## The paper's claims, decided" in md
    claims = report["tables"]["claims"]
    pairs = {(c["a"], c["b"], c["metric"]) for c in claims}
    assert ("both_k1", "none", "R-Top1") in pairs and ("both_k1", "both_wb", "CIDEr") in pairs
    assert ("both_k1", "copy top-1 motion (t2t)", "FID") in pairs and (
        "both_k1",
        "copy top-1 caption",
        "CIDEr",
    ) in pairs
    assert not [c for c in claims if c["b"] in ("t2t", "t2m", "both_k1")]  # variants not run: no claim
    assert {c["verdict"] for c in claims} == {"not decided (one seed)"}
    rare_claims = [c for c in claims if c["task"] == "rare"]
    assert [c["metric"] for c in rare_claims] == ["MMDist", "Top5%_MMDist", "Balanced_MMDist"]
    for c in claims:  # A − B signed in A's favour, from the per-seed rows
        sign = -1.0 if c["metric"] in ("FID", "MMDist") or c["task"] == "rare" else 1.0
        assert c["difference"]["mean"] == pytest.approx(sign * (c["a_mean"] - c["b_mean"]), abs=1e-9)
    baselines = report["tables"]["baselines"]
    assert set(baselines) == {TOKENIZER_ROUNDTRIP, COPY_T2M, COPY_T2T, COPY_M2T}
    copy = ProtocolResult.from_dict(report["per_seed"]["0"]["t2m"]["none"], "none")
    assert baselines[COPY_T2T]["top1"]["mean"] == copy.mean(COPY_T2T, "top1")
    assert f"| {COPY_T2T} (no LM) |" in md and f"| {COPY_M2T} (no LM) |" in md


def _fresh_work(source: Path, target: Path) -> Path:
    """A new work folder holding only the shared tokenizer and the evaluator of `source`: no model of any seed."""
    import shutil

    for part in ("shared", "evaluator"):
        shutil.copytree(source / part, target / part, symlinks=True)
    return target


@pytest.mark.slow
def test_ablation_reuses_an_earlier_reports_results(ablation: tuple[Path, dict[str, Any]], embedded_small: Path,
                                                    tmp_path: Path):  # fmt: skip
    """An earlier report's results stand in for the models that made them (checked by key), so tables over
    more seeds can be written after the models are gone; a result made otherwise is refused by name."""
    import copy

    from remogpt.eval.ablation import _aggregate, ablation_markdown

    work, report = ablation
    earlier = work / "tables" / "paper_tables.json"
    logs: list[str] = []
    again = run_ablation(embedded_small, _fresh_work(work, tmp_path / "a"), out_md=None,
                         config=AblationConfig.from_dict(MICRO), import_reports=[earlier], log=logs.append)  # fmt: skip
    assert not [m for m in logs if "training →" in m or "evaluating →" in m], logs
    assert again["tables"] == report["tables"]
    assert not (tmp_path / "a" / "seed0" / "runs").exists()  # no model was needed
    assert all(p.get("imported_from") == str(earlier) for n, p in again["pieces"].items() if n.startswith("seed 0"))

    # train=False: a configured variant that was never trained is left out, nothing trains.
    logs.clear()
    more = AblationConfig.from_dict({**MICRO, "variants": ["none", "t2t", "both_k1", "both_wb"]})
    partial = run_ablation(embedded_small, _fresh_work(work, tmp_path / "b"), out_md=None, config=more,
                           import_reports=[earlier], train=False, log=logs.append)  # fmt: skip
    assert set(partial["tables"]["table6"]) == {"none", "both_k1", "both_wb"}
    assert any("seed 0 t2t: left out" in m for m in logs) and not [m for m in logs if "training →" in m]

    # A result whose key differs (another tokenizer, evaluator or setting) is refused, naming it.
    tampered = json.loads(earlier.read_text())
    tampered["per_seed"]["0"]["m2t"]["both_wb"]["ablation_key"] = "0" * 16
    (tmp_path / "tampered.json").write_text(json.dumps(tampered))
    with pytest.raises(AblationError, match="seed 0 m2t both_wb was made with other inputs"):
        run_ablation(embedded_small, _fresh_work(work, tmp_path / "c"), out_md=None,
                     config=AblationConfig.from_dict(MICRO), import_reports=[tmp_path / "tampered.json"],
                     log=lambda _m: None)  # fmt: skip

    # Rows over the seeds that have them: a second seed without both_wb leaves that row (and its claims)
    # at one seed, the others at two.
    two = copy.deepcopy(report)
    two["per_seed"]["1"] = copy.deepcopy(report["per_seed"]["0"])
    for task in ("t2m", "m2t"):
        del two["per_seed"]["1"][task]["both_wb"]
    cfg = AblationConfig.from_dict({**MICRO, "seeds": [0, 1]})
    two["seeds"], two["config"] = [0, 1], cfg.to_dict()
    two["tables"] = _aggregate(two, cfg)
    t6 = two["tables"]["table6"]
    assert t6["both_wb"]["seeds"] == [0] and t6["none"]["seeds"] == [0, 1]
    one = report["tables"]["table6"]["none"]["t2m/top1"]["mean"]
    assert t6["none"]["t2m/top1"]["values"] == [one, one]
    assert t6["both_wb"]["t2m/top1"]["mean"] == report["tables"]["table6"]["both_wb"]["t2m/top1"]["mean"]
    for claim in two["tables"]["claims"]:
        assert claim["difference"]["n"] == (1 if "both_wb" in (claim["a"], claim["b"]) else 2), claim
    md = ablation_markdown(two)
    assert "| Both (whole-body retriever) (seed 0) | 1+1 |" in md and "| Both | 1+1 |" in md


def test_paired_claims_match_a_paired_t_test():
    """The claims' intervals are the paired t-test's (scipy's ttest_rel, an independent computation)."""
    from scipy.stats import ttest_rel

    a, b = [0.52, 0.61, 0.57, 0.49], [0.45, 0.50, 0.58, 0.40]
    diff = paired_difference(a, b, higher_is_better=True)
    ci = ttest_rel(a, b).confidence_interval(0.95)
    assert diff["lo"] == pytest.approx(ci.low) and diff["hi"] == pytest.approx(ci.high)
    assert diff["mean"] == pytest.approx(np.mean(np.subtract(a, b)))
    assert claim_verdict(diff, "better") == "not decided (interval spans 0)"
    # Lower-is-better metrics are flipped so that positive favours A.
    fid = paired_difference([0.2, 0.3, 0.25], [0.9, 1.1, 1.0], higher_is_better=False)
    assert fid["lo"] > 0 and claim_verdict(fid, "better") == "reproduced"
    worse = paired_difference([0.2, 0.3, 0.25], [0.9, 1.1, 1.0], higher_is_better=True)
    assert worse["hi"] < 0 and claim_verdict(worse, "better") == "reversed"
    assert claim_verdict(worse, "equal") == "not reproduced (they differ)"
    assert claim_verdict(diff, "equal") == "reproduced (no difference found)"
    assert claim_verdict(paired_difference([0.5], [0.4], True), "better") == "not decided (one seed)"


def _record_pieces(work: str, prefix: str, count: int) -> None:
    from remogpt.eval.ablation import _State

    for i in range(count):
        state = _State(Path(work))
        state.finish(f"{prefix} {i}", f"key{i}", state.start(f"{prefix} {i}", f"key{i}"))


def test_manifest_keeps_every_process_pieces(tmp_path: Path):
    """Two processes sharing a work folder (one per seed) each record their pieces; none is lost."""
    import multiprocessing

    from remogpt.eval.ablation import _State

    early = _State(tmp_path)  # opened before the others write, as a long-running process would be
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_record_pieces, args=(str(tmp_path), f"seed {s}", 25)) for s in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    early.update({"late piece": {"key": "k", "status": "done"}}, config={"seeds": [0, 1]})
    pieces = _State(tmp_path).pieces()
    assert {f"seed {s} {i}" for s in (0, 1) for i in range(25)} | {"late piece"} == set(pieces)
    assert all(p["status"] == "done" for p in pieces.values())
    assert json.loads((tmp_path / "ablation.json").read_text())["config"] == {"seeds": [0, 1]}
