"""CLI commands of the evaluation stage (registered by `remogpt.cli`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from remogpt.artifacts import retrain_if_forced
from remogpt.config import layered_config
from remogpt.lm.commands import GuidanceOpt  # the option as `generate` takes it

__all__ = ["register"]


def train_evaluator_command(
    data: Annotated[Path, typer.Option(help="HumanML3D-layout folder to train on (its train split).")] = Path(
        "data/embedded"
    ),
    out: Annotated[Path, typer.Option(help="Run directory for the evaluator artifact.")] = Path("runs/evaluator"),
    preset: Annotated[str, typer.Option(help="tiny (CPU) or paper (the official evaluator's sizes).")] = "tiny",
    config: Annotated[
        Path | None, typer.Option(help="YAML EvaluatorConfig: its fields over the preset's; flags over both.")
    ] = None,
    max_steps: Annotated[int | None, typer.Option(min=1, help="Training steps (default: the config's).")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Batch size (default: the config's).")] = None,
    accelerator: Annotated[str | None, typer.Option(help="cpu, gpu or auto (default auto).")] = None,
    devices: Annotated[str | None, typer.Option(help="auto, a count or a list like 0,1 (default auto).")] = None,
    strategy: Annotated[str | None, typer.Option(help="auto, ddp, … (default auto).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default 0).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the run's last checkpoint.")] = False,
    force: Annotated[bool, typer.Option(help="Delete OUT and train the evaluator from scratch.")] = False,
) -> None:
    """Train the text–motion matching evaluator (Guo et al.) used for FID, R-Precision and MMDist."""
    from remogpt.eval import r_precision
    from remogpt.eval.evaluator import EvaluatorConfig
    from remogpt.eval.train_evaluator import train_evaluator
    from remogpt.training import TrainerConfig

    cfg = layered_config(EvaluatorConfig, preset, config, {"max_steps": max_steps, "batch_size": batch_size})
    placement = {"accelerator": accelerator, "devices": devices, "strategy": strategy, "seed": seed}
    tcfg = TrainerConfig(max_steps=cfg.max_steps, batch_size=cfg.batch_size,
                         **{k: v for k, v in placement.items() if v is not None})  # fmt: skip
    retrain_if_forced(force, resume, out)
    model = train_evaluator(data, out, cfg, tcfg, resume=resume)
    from remogpt.data import load_split

    test = load_split(data, "test")
    if len(test) >= 32:
        m = model.embed_motions([c.features for c in test])
        t = model.embed_texts([c.captions[0].tokens for c in test])
        top = r_precision(t, m)
        typer.echo(f"real test motions: R-Precision top-1/2/3 {top[0]:.3f}/{top[1]:.3f}/{top[2]:.3f}")
    typer.echo(f"wrote {out}")


def train_judge_command(
    data: Annotated[Path, typer.Option(help="Folder built by `remogpt data synth` (its labels.jsonl).")] = Path(
        "data/embedded"
    ),
    out: Annotated[Path, typer.Option(help="Run directory for the judge artifact.")] = Path("runs/judge"),
    preset: Annotated[str, typer.Option(help="tiny (CPU, minutes) or paper.")] = "tiny",
    config: Annotated[
        Path | None, typer.Option(help="YAML JudgeConfig: its fields over the preset's; flags over both.")
    ] = None,
    max_steps: Annotated[int | None, typer.Option(min=1, help="Training steps (default: the config's).")] = None,
    accelerator: Annotated[str | None, typer.Option(help="cpu, gpu or auto (default auto).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default 0).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the run's last checkpoint.")] = False,
    force: Annotated[bool, typer.Option(help="Delete OUT and train the judge from scratch.")] = False,
) -> None:
    """Train the motion attribute judge (actions, sides, directions, counts per phase) on generated labels."""
    from remogpt.eval.judge import JudgeConfig
    from remogpt.eval.train_judge import judge_split_accuracy, train_judge
    from remogpt.training import TrainerConfig

    cfg = layered_config(JudgeConfig, preset, config, {"max_steps": max_steps})
    placement = {"accelerator": accelerator, "seed": seed}
    tcfg = TrainerConfig(max_steps=cfg.max_steps, batch_size=cfg.batch_size, checkpoint_every_n_steps=500,
                         **{k: v for k, v in placement.items() if v is not None})  # fmt: skip
    retrain_if_forced(force, resume, out)
    judge = train_judge(data, out, cfg, tcfg, resume=resume)
    left_out = judge.manifest.extra.get("left_out", {}) if judge.manifest else {}
    typer.echo(f"scored attributes: {len(judge.scored or ())}; left out (below {cfg.min_accuracy:.0%} on real "
               f"validation clips, or rarer than {cfg.min_support}): "
               f"{', '.join(sorted(left_out)) or 'none'}")  # fmt: skip
    test = judge_split_accuracy(judge, data, "test", judge.scored)
    typer.echo(f"real test clips: attribute accuracy {test['attributes']:.3f}, all attributes right "
               f"{test['all_correct']:.3f}")  # fmt: skip
    typer.echo(f"wrote {out}")


# ----------------------------------------------------------------------------- remogpt eval …

eval_app = typer.Typer(
    help="The paper's evaluations: t2m, m2t, retrieval, rare (tables as Markdown/JSON/PNG) and the ablation.",
    no_args_is_help=True,
)

RunArg = Annotated[Path, typer.Argument(help="Run folder (tokenizer/, retriever/, lm/).")]
DataOpt = Annotated[Path, typer.Option(help="HumanML3D-layout data folder.")]
EvaluatorOpt = Annotated[Path, typer.Option(help="Trained matching evaluator (remogpt train evaluator).")]
OutOpt = Annotated[Path | None, typer.Option(help="Where JSON/Markdown/PNG go (default: RUN_DIR/eval).")]
SplitOpt = Annotated[str, typer.Option(help="Split to evaluate.")]
SeedOpt = Annotated[int, typer.Option(help="Seed of every random choice (repeat r uses seed + r).")]
PromptsOpt = Annotated[int | None, typer.Option(min=1, help="A fixed seeded subset of the split (default: all).")]
ModalityOpt = Annotated[str | None, typer.Option(help="Override the context: none, t2t, t2m, both.")]
KOpt = Annotated[int | None, typer.Option(min=0, help="Override retrieved pairs per modality.")]
ThreadsOpt = Annotated[int | None, typer.Option(help="torch CPU threads (1 is fastest on busy small machines).")]


def _threads(threads: int | None) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(max(1, threads))


def _retrieval_override(modality: str | None, k: int | None) -> object:
    if modality is None and k is None:
        return None
    from remogpt.lm import RetrievalPromptConfig

    return RetrievalPromptConfig.from_dict({key: v for key, v in (("modality", modality), ("k", k)) if v is not None})


def _finish(result: object, out: Path, name: str) -> None:
    from remogpt.eval.reports import to_markdown, write_report

    written = write_report(result, out, name)  # type: ignore[arg-type]
    typer.echo(to_markdown(result))  # type: ignore[arg-type]
    typer.echo("wrote " + ", ".join(str(p) for p in written))


def eval_t2m_command(
    run_dir: RunArg,
    data: DataOpt = Path("data/embedded"),
    evaluator: EvaluatorOpt = Path("runs/evaluator"),
    repeats: Annotated[int, typer.Option(min=1, help="Repeats (the protocol: 20).")] = 20,
    num_prompts: PromptsOpt = None,
    mmodality: Annotated[bool, typer.Option(help="Also MModality (costs mm-texts × mm-generations motions).")] = True,
    mm_texts: Annotated[int, typer.Option(min=1, help="MModality texts (the protocol: 100).")] = 100,
    mm_generations: Annotated[int, typer.Option(min=1, help="Generations per text (the protocol: 30).")] = 30,
    mm_times: Annotated[int, typer.Option(min=1, help="Random pairs per text (the protocol: 10).")] = 10,
    diversity_times: Annotated[int, typer.Option(min=1, help="Diversity pairs (the protocol: 300).")] = 300,
    caption: Annotated[str, typer.Option(help="random (the reference loader) or first.")] = "random",
    modality: ModalityOpt = None,
    k: KOpt = None,
    rerank: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help=(
                "Best of N for every generated motion (see --rerank-by; default: the model's, 1 = off); "
                "recorded in the result."
            ),
        ),
    ] = None,
    rerank_by: Annotated[
        str | None,
        typer.Option(help=("What picks the best of N: retriever, captioner or both (default: the model's); recorded.")),
    ] = None,
    guidance: GuidanceOpt = None,
    judge: Annotated[
        Path | None,
        typer.Option(help="Attribute judge (remogpt train judge): adds attribute accuracy to every row."),
    ] = None,
    split: SplitOpt = "test",
    seed: SeedOpt = 0,
    out: OutOpt = None,
    threads: ThreadsOpt = None,
) -> None:
    """Text-to-motion (Guo et al.): R-Precision, FID, MMDist, Diversity, MModality, with a Real row;
    the copy rate; attribute accuracy with --judge (use --split test_compositional for unseen compositions)."""
    from remogpt.eval.runners import eval_t2m

    _threads(threads)
    result = eval_t2m(run_dir, data, evaluator, repeats=repeats, num_prompts=num_prompts, mmodality=mmodality,
                      retrieval=_retrieval_override(modality, k), seed=seed, split=split, caption=caption,
                      diversity_times=diversity_times, mm_texts=mm_texts, mm_generations=mm_generations,
                      mm_times=mm_times, rerank=rerank, rerank_score=rerank_by, guidance_scale=guidance,
                      judge_dir=judge, log=typer.echo)  # fmt: skip
    _finish(result, out or run_dir / "eval", "t2m" if split == "test" else f"t2m_{split}")


def eval_m2t_command(
    run_dir: RunArg,
    data: DataOpt = Path("data/embedded"),
    evaluator: EvaluatorOpt = Path("runs/evaluator"),
    repeats: Annotated[int, typer.Option(min=1, help="R-Precision shuffles.")] = 20,
    num_prompts: PromptsOpt = None,
    bertscore: Annotated[bool, typer.Option(help="Also BERTScore (the model used is named).")] = True,
    num_beams: Annotated[int, typer.Option(min=1, help="1: greedy (the protocol).")] = 1,
    modality: ModalityOpt = None,
    k: KOpt = None,
    split: SplitOpt = "test",
    seed: SeedOpt = 0,
    out: OutOpt = None,
    threads: ThreadsOpt = None,
) -> None:
    """Motion-to-text: BLEU@1/4, ROUGE-L, CIDEr, BERTScore, R-Precision, MMDist, Length_avg, with a Real row."""
    from remogpt.eval.runners import eval_m2t

    _threads(threads)
    result = eval_m2t(run_dir, data, evaluator, bertscore=bertscore, repeats=repeats, num_prompts=num_prompts,
                      retrieval=_retrieval_override(modality, k), seed=seed, split=split, num_beams=num_beams,
                      log=typer.echo)  # fmt: skip
    _finish(result, out or run_dir / "eval", "m2t")


def eval_retrieval_command(
    run_dirs: Annotated[list[Path], typer.Argument(help="Retriever folders (or runs holding retriever/).")],
    data: DataOpt = Path("data/embedded"),
    text_to_text: Annotated[bool, typer.Option(help="Add the text-to-text row (frozen MiniLM).")] = False,
    split: SplitOpt = "test",
    seed: SeedOpt = 0,
    out: OutOpt = None,
    threads: ThreadsOpt = None,
) -> None:
    """Table 1 (TMR protocol): R@1/2/3/5/10 and MedR both ways, all samples and small batches; recall curves."""
    from remogpt.eval.runners import eval_retrieval, eval_text_to_text

    _threads(threads)
    results = [eval_retrieval(r, data, seed=seed, split=split) for r in run_dirs]
    labels = [r["label"] for r in results]
    for i, r in enumerate(results):
        if labels.count(r["label"]) > 1:
            r["label"] = f"{r['label']} ({run_dirs[i]})"
    if text_to_text:
        results.append(eval_text_to_text(data, seed=seed, split=split))
    _finish(results, out or run_dirs[0] / "eval", "retrieval")


def eval_rare_command(
    run_dir: RunArg,
    data: DataOpt = Path("data/embedded"),
    evaluator: EvaluatorOpt = Path("runs/evaluator"),
    baseline: Annotated[Path | None, typer.Option(help="A run to compare with (e.g. one without retrieval).")] = None,
    baseline_label: Annotated[str, typer.Option(help="Its row label.")] = "no retrieval",
    repeats: Annotated[int, typer.Option(min=1, help="Generations per sample, each with its own seed.")] = 1,
    num_ranges: Annotated[int, typer.Option(min=1, help="Equal-width rareness ranges of Balanced MMDist.")] = 10,
    diversity_times: Annotated[int, typer.Option(min=1, help="Diversity pairs (at most n − 1 are drawn).")] = 300,
    split: SplitOpt = "test",
    seed: SeedOpt = 0,
    out: OutOpt = None,
    threads: ThreadsOpt = None,
) -> None:
    """Rare motions (Table 8): MMDist, top-5% MMDist, Balanced MMDist, Diversity, top-5% Diversity."""
    from remogpt.eval.runners import eval_rare

    _threads(threads)
    result = eval_rare(run_dir, data, evaluator, baseline_run_dir=baseline, baseline_label=baseline_label,
                       repeats=repeats, seed=seed, split=split, num_ranges=num_ranges,
                       diversity_times=diversity_times, log=typer.echo)  # fmt: skip
    _finish(result, out or run_dir / "eval", "rare")


def eval_ablation_command(
    data: DataOpt = Path("data/embedded"),
    work: Annotated[Path, typer.Option(help="Work folder (reused: finished pieces are skipped).")] = Path(
        "runs/ablation"
    ),
    seeds: Annotated[list[int] | None, typer.Option("--seed", help="Seeds (repeat the option; default 0, 1).")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML AblationConfig (budgets).")] = None,
    preset: Annotated[str, typer.Option(help="tiny (reduced evaluation) or protocol (20 repeats, 100×30).")] = "tiny",
    tokenizer: Annotated[Path | None, typer.Option(help="Use this trained tokenizer instead of training one.")] = None,
    evaluator: Annotated[Path | None, typer.Option(help="Use this trained evaluator instead of training one.")] = None,
    out_md: Annotated[Path, typer.Option(help="The tables (a JSON and PNGs go beside it).")] = Path(
        "benchmarks/results/paper_tables.md"
    ),
    threads: ThreadsOpt = None,
    import_report: Annotated[
        list[Path] | None,
        typer.Option(help="An earlier report's JSON whose results are reused where they match this run (repeat)."),
    ] = None,
    train: Annotated[bool, typer.Option(help="--no-train: train nothing, tabulate what is finished.")] = True,
) -> None:
    """Tables 1, 6 and 8 over seeds: retrievers, stage-2 retrieval variants, rare motions (resumable)."""
    from remogpt.eval.ablation import AblationConfig, ablation_markdown, run_ablation

    cfg = AblationConfig.from_yaml(config) if config else AblationConfig.preset(preset)
    if threads is not None:
        cfg = cfg.replace(threads=threads)
    report = run_ablation(data, work, seeds=seeds or None, out_md=out_md, config=cfg, tokenizer_dir=tokenizer,
                          evaluator_dir=evaluator, log=typer.echo, import_reports=import_report or (),
                          train=train)  # fmt: skip
    typer.echo(ablation_markdown(report).split("## Budgets")[0])


def register(app: typer.Typer, train_app: typer.Typer, data_app: typer.Typer) -> None:
    train_app.command("evaluator")(train_evaluator_command)
    train_app.command("judge")(train_judge_command)
    eval_app.command("t2m")(eval_t2m_command)
    eval_app.command("m2t")(eval_m2t_command)
    eval_app.command("retrieval")(eval_retrieval_command)
    eval_app.command("rare")(eval_rare_command)
    eval_app.command("ablation")(eval_ablation_command)
    app.add_typer(eval_app, name="eval")
