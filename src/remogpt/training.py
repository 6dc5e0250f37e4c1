"""One way to train every stage: PyTorch Lightning with the project's conveniences.

Progress bar, CSV (and TensorBoard, when installed) logs, checkpoints written atomically (temporary
file + rename, so an interruption never leaves a torn file), a checkpoint on Ctrl-C, resume from
the last checkpoint, and `devices`/`strategy`/`num_nodes` passed straight to Lightning, so the same
command runs on a laptop CPU, several GPUs (DDP) or several machines. Checkpoints are read back
with `weights_only=True`: nothing but tensors and plain containers is ever unpickled.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from remogpt.artifacts import TRAIN_SETTINGS_NAME, ArtifactError, atomic_write_text, clean_stale_temporaries
from remogpt.config import ConfigBase, ConfigError
from remogpt.errors import first_line

__all__ = [
    "LAST_CHECKPOINT",
    "TRAIN_SETTINGS_NAME",
    "SettingsMismatchError",
    "TrainerConfig",
    "build_trainer",
    "check_settings",
    "checkpoint_step",
    "first_difference",
    "fit",
    "last_checkpoint",
    "load_checkpoint",
    "more_threads_at",
    "recorded_settings",
    "run_settings",
    "training_settings",
]

LAST_CHECKPOINT = "last.ckpt"
#: TrainerConfig fields that say where and how visibly a training runs, not what it learns: a run
#: may resume on other hardware, with other workers or other logging.
PLACEMENT_FIELDS = frozenset({"num_workers", "accelerator", "devices", "num_nodes", "strategy", "log_every_n_steps",
                              "val_every_n_steps", "checkpoint_every_n_steps", "progress_bar"})  # fmt: skip


@dataclasses.dataclass
class TrainerConfig(ConfigBase):
    """How to run training (not what to train): steps, hardware, logging, checkpoints."""

    max_steps: int = 1000
    batch_size: int = 64
    num_workers: int = 0  # DataLoader worker processes
    accelerator: str = "auto"  # "cpu", "gpu", "auto"
    devices: str = "auto"  # "auto", a count ("2") or a list ("0,1")
    num_nodes: int = 1
    strategy: str = "auto"  # "auto", "ddp", "ddp_spawn", "fsdp", …
    precision: str = "32-true"  # "bf16-mixed" / "16-mixed" on GPUs
    gradient_clip_val: float | None = None
    log_every_n_steps: int = 20
    val_every_n_steps: int | None = None  # None: at the end of every epoch
    checkpoint_every_n_steps: int = 200
    seed: int = 0
    progress_bar: bool = True

    def __post_init__(self) -> None:
        if self.max_steps < 1:
            raise ConfigError(f"max_steps must be ≥ 1, got {self.max_steps}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be ≥ 1, got {self.batch_size}")
        if self.checkpoint_every_n_steps < 1:
            raise ConfigError(f"checkpoint_every_n_steps must be ≥ 1, got {self.checkpoint_every_n_steps}")

    def lightning_devices(self) -> int | str | list[int]:
        d = self.devices.strip()
        if d == "auto":
            return "auto"
        if "," in d:
            return [int(x) for x in d.split(",") if x.strip()]
        try:
            return int(d)
        except ValueError:
            raise ConfigError(f"devices must be 'auto', a count or a comma-separated list, got {d!r}") from None


def _checkpoint_io() -> Any:
    from lightning.pytorch.plugins.io import TorchCheckpointIO

    class AtomicCheckpointIO(TorchCheckpointIO):
        """Write to a temporary file in the same folder, then rename over the target."""

        def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as fh:
                    torch.save(checkpoint, fh)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise

    return AtomicCheckpointIO()


def _epoch_setter(dataset: Any) -> Any:
    """Tell a dataset which epoch it is, so its seeded random captions and crops change per epoch."""
    from lightning.pytorch.callbacks import Callback

    class EpochSetter(Callback):
        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            dataset.set_epoch(trainer.current_epoch)

    return EpochSetter()


def more_threads_at(step: int, freed: Any, threads: int) -> Any:
    """A callback for a training that shares the machine: at `step` it waits until `freed` (an
    Event) is set, by whoever held the other cores, then runs torch on `threads` threads.

    The switch happens at that step whatever the timing, so the result is the same on every run
    (the thread count changes the last digits of float results); a run resumed past `step` waits
    and switches at its first step."""
    from lightning.pytorch.callbacks import Callback

    class MoreThreadsAt(Callback):
        switched_at: int | None = None  # the step it switched at
        waited_s = 0.0  # how long it waited there for the event

        def on_train_batch_start(self, trainer: Any, *_args: Any) -> None:
            if self.switched_at is None and trainer.global_step >= step:
                t0 = time.perf_counter()
                freed.wait()
                self.waited_s = time.perf_counter() - t0
                torch.set_num_threads(threads)
                self.switched_at = trainer.global_step

    return MoreThreadsAt()


def last_checkpoint(run_dir: Path | str) -> Path | None:
    path = Path(run_dir) / "checkpoints" / LAST_CHECKPOINT
    return path if path.is_file() else None


def load_checkpoint(path: Path | str) -> dict[str, Any]:
    """A training checkpoint's contents; a damaged or foreign file is refused in one line.

    Read with `weights_only=True` (tensors and plain containers only, never arbitrary pickles) and
    memory-mapped, so checking costs little even for large checkpoints."""
    import pickle
    import zipfile

    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        first = first_line(exc).split(". ")[0]
        raise ArtifactError(f"{path}: damaged checkpoint ({first[:100]}); delete it to train from the start") from None
    if not isinstance(state, dict) or "global_step" not in state:
        raise ArtifactError(f"{path}: not a Lightning checkpoint (no global_step); delete it to train from the start")
    return state


def checkpoint_step(path: Path | str) -> int:
    """The optimizer step a checkpoint was written at (see `load_checkpoint`)."""
    return int(load_checkpoint(path)["global_step"])


def build_trainer(run_dir: Path | str, cfg: TrainerConfig, extra_callbacks: list | None = None) -> Any:
    """A Lightning Trainer writing logs and checkpoints under `run_dir`."""
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import ModelCheckpoint, OnExceptionCheckpoint, TQDMProgressBar
    from lightning.pytorch.loggers import CSVLogger

    run_dir = Path(run_dir)
    # Lightning's banners ("GPU available: …", tips) drown our own progress lines; warnings still show.
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # Each launch (first run, each resume) logs to its own logs/version_N, so nothing is overwritten.
    csv = CSVLogger(str(run_dir), name="logs")
    loggers: list[Any] = [csv]
    try:
        import tensorboard  # noqa: F401  (the logger needs it installed)
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(str(run_dir), name="logs", version=csv.version, default_hp_metric=False))
    except ImportError:
        pass
    ckpt_dir = run_dir / "checkpoints"
    callbacks: list[Any] = [
        # One rolling file, last.ckpt, rewritten every N steps (atomically, see AtomicCheckpointIO).
        ModelCheckpoint(dirpath=str(ckpt_dir), filename="last", save_top_k=1, save_last=False,
                        enable_version_counter=False, every_n_train_steps=cfg.checkpoint_every_n_steps),
        OnExceptionCheckpoint(dirpath=str(ckpt_dir), filename="last"),
    ]  # fmt: skip
    show_bar = cfg.progress_bar and sys.stderr.isatty()
    if show_bar:
        callbacks.append(TQDMProgressBar(refresh_rate=max(1, cfg.log_every_n_steps // 4)))
    callbacks += extra_callbacks or []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        return pl.Trainer(
            default_root_dir=str(run_dir),
            max_steps=cfg.max_steps,
            max_epochs=-1,
            accelerator=cfg.accelerator,
            devices=cfg.lightning_devices(),
            num_nodes=cfg.num_nodes,
            strategy=cfg.strategy,
            precision=cfg.precision,  # type: ignore[arg-type]
            gradient_clip_val=cfg.gradient_clip_val,
            log_every_n_steps=cfg.log_every_n_steps,
            val_check_interval=cfg.val_every_n_steps,
            check_val_every_n_epoch=None if cfg.val_every_n_steps else 1,
            logger=loggers,
            callbacks=callbacks,
            enable_progress_bar=show_bar,
            enable_model_summary=False,
            plugins=[_checkpoint_io()],
        )


# Lightning messages that say nothing to our users: single-process data loading is deliberate on
# CPUs; "last" bookkeeping is ours; a resumed run starts a freshly shuffled epoch (data loaders are
# not resumable mid-epoch), which is documented in `fit`.
_LIGHTNING_NOISE = (
    ".*does not have many workers.*",
    ".*The number of training batches.*",
    ".*was called without a model.*",
    ".*there is no last checkpoint available.*",
    ".*exists and is not empty.*",
    ".*dataloader is not resumable.*",
    ".*LeafSpec.*",
    ".*dirpath has changed.*",  # a run folder that was moved or copied: nothing to reload from the old place
)


class SettingsMismatchError(ArtifactError):
    """A resumed or reused training was started with other settings than the ones asked for now."""


def training_settings(config: dict[str, Any], ignore: Any = ()) -> dict[str, Any]:
    """What decides what a training learns: a stage's config as a plain dict, without the trainer's
    placement fields (`PLACEMENT_FIELDS`), the fields in `ignore` (dotted names) and with the data
    folder as an absolute path (a run resumed from another working directory is the same run)."""
    skip = set(ignore)

    def clean(value: Any, where: str) -> Any:
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                name = f"{where}.{key}" if where else str(key)
                if name in skip or (where.split(".")[-1] == "trainer" and key in PLACEMENT_FIELDS):
                    continue
                if key == "root" and isinstance(item, (str, Path)):
                    item = str(Path(item).resolve())
                out[key] = clean(item, name)
            return out
        if isinstance(value, (list, tuple)):
            return [clean(v, where) for v in value]
        return value

    plain = json.loads(json.dumps(config, default=str))
    return clean(plain, "")


def first_difference(old: Any, new: Any, where: str = "", allow: Any = ()) -> tuple[str, Any, Any] | None:
    """The first dotted field (in `new`'s order, then fields only `old` has) whose values differ;
    the dotted names in `allow` may differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*new, *(k for k in old if k not in new)]:
            name = f"{where}.{key}" if where else str(key)
            if name in allow:
                continue
            if key not in old:
                return name, "(absent)", new[key]
            if key not in new:
                return name, old[key], "(absent)"
            found = first_difference(old[key], new[key], name, allow)
            if found is not None:
                return found
        return None
    return None if old == new else (where or "(settings)", old, new)


def check_settings(run_dir: Path | str, settings: dict[str, Any], what: str = "--resume", allow: Any = ()) -> None:
    """Refuse, in one line naming the first differing field, to continue or reuse the training in
    `run_dir` when it was started with other `settings` (the dotted names in `allow` may differ).
    A training from before settings were recorded is let through (there is nothing to compare)."""
    path = Path(run_dir) / TRAIN_SETTINGS_NAME
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise ArtifactError(f"{path}: unreadable settings record; retrain with --force") from None
    found = first_difference(stored, json.loads(json.dumps(settings, default=str)), allow=allow)
    if found is not None:
        field, old, new = found
        field = field.removeprefix("stage.")  # `run_settings`' wrapper: the name as the config spells it
        raise SettingsMismatchError(
            f"{run_dir}: {what} asks for {field}={new!r}, but this training was started with {field}={old!r} "
            "(the first setting that differs); ask for the same settings, or retrain with --force"
        )


def run_settings(settings: dict[str, Any], cfg: TrainerConfig) -> dict[str, Any]:
    """What `fit` records and compares: the stage's `settings` and the trainer's (placement left out)."""
    return {"stage": settings, "trainer": training_settings({"trainer": cfg.to_dict()})["trainer"]}


def recorded_settings(run_dir: Path | str) -> dict[str, Any] | None:
    """The settings a training in `run_dir` was started with (None: none recorded, or unreadable)."""
    try:
        return json.loads((Path(run_dir) / TRAIN_SETTINGS_NAME).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def record_settings(run_dir: Path | str, settings: dict[str, Any]) -> None:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(settings, indent=2, default=str) + "\n"
    atomic_write_text(run_dir / TRAIN_SETTINGS_NAME, text)


def fit(
    module: Any,
    train_loader: Any,
    run_dir: Path | str,
    cfg: TrainerConfig,
    val_loader: Any = None,
    resume: bool = False,
    extra_callbacks: list | None = None,
    settings: dict[str, Any] | None = None,
) -> Any:
    """Train `module` (a LightningModule) and return the Trainer.

    `resume` continues from `run_dir/checkpoints/last.ckpt`: weights, optimizer, step count and
    schedulers are restored; the data order of the interrupted epoch is not (a new shuffle starts).
    The returned Trainer's `remogpt_start_step` is the step the run resumed at (0 for a fresh run).
    `settings` (from `training_settings`) are recorded when a training starts and compared when it
    is resumed: other settings are refused with `SettingsMismatchError`. The trainer's own settings
    (batch, seed, precision …) are always part of them; the step count may change, so that a
    finished training can be continued to more steps.
    """
    import lightning.pytorch as pl

    run_dir = Path(run_dir)
    clean_stale_temporaries(run_dir / "checkpoints")  # left by a kill -9 during a checkpoint write
    ckpt = last_checkpoint(run_dir)
    if resume and ckpt is None:
        raise ArtifactError(f"{run_dir}: nothing to resume (no checkpoints/{LAST_CHECKPOINT}); drop --resume")
    if not resume and ckpt is not None:
        # Lightning would silently continue from it (its on-exception checkpoint makes "last" the default).
        raise ArtifactError(
            f"{run_dir}: already holds a training checkpoint ({ckpt.name}); continue it with --resume, "
            "retrain it with --force, or train into another folder"
        )
    full = run_settings(settings or {}, cfg)
    if resume:
        check_settings(run_dir, full, allow={"trainer.max_steps"})
    record_settings(run_dir, full)
    start_step = checkpoint_step(ckpt) if resume and ckpt is not None else 0
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    torch.set_flush_denormal(True)  # CPU arithmetic on denormal floats is up to 100× slower; no effect on GPUs
    callbacks = list(extra_callbacks or [])
    dataset = getattr(train_loader, "dataset", None)
    if hasattr(dataset, "set_epoch"):
        callbacks.append(_epoch_setter(dataset))
    trainer = build_trainer(run_dir, cfg, callbacks)
    with warnings.catch_warnings():
        for noise in _LIGHTNING_NOISE:
            warnings.filterwarnings("ignore", message=noise)
        trainer.fit(module, train_loader, val_loader, ckpt_path=str(ckpt) if resume else None, weights_only=True)
    trainer.remogpt_start_step = start_step  # steps done before this launch (summaries report the new ones)
    if not trainer.interrupted:
        # The final state, whatever N was (the full training state: weights_only=False means "not only weights").
        trainer.save_checkpoint(str(run_dir / "checkpoints" / LAST_CHECKPOINT), weights_only=False)
    return trainer
