"""Run directories: a manifest (config, versions, data hash) and safetensors weights.

Every trained thing is a directory that `from_pretrained(path)` can read back without unpickling
anything. The manifest is what lets a later stage refuse to combine artifacts that were built from
different data or with different feature dimensions, instead of producing silent garbage.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from remogpt.errors import RemogptError, first_line

__all__ = [
    "DEFAULT_RUN",
    "MANIFEST_NAME",
    "STAGE_COMMANDS",
    "WEIGHTS_NAME",
    "ArtifactError",
    "InputFileError",
    "Manifest",
    "RunFolder",
    "StageCache",
    "atomic_save_npy",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_output_file",
    "clean_stale_temporaries",
    "clear_for_retraining",
    "hash_files",
    "hash_folder",
    "load_npy",
    "load_weights",
    "read_manifest",
    "replace_folder",
    "retrain_if_forced",
    "save_weights",
    "sha256_file",
    "staging_folder",
    "verify_weights",
    "write_manifest",
]

MANIFEST_NAME = "manifest.json"
WEIGHTS_NAME = "model.safetensors"
MANIFEST_FORMAT = 1
#: Config fields that shape training only, per stage: left out of fingerprints, so an artifact keeps the
#: fingerprint it had before the field existed (its weights, which the fingerprint holds, say the rest).
TRAINING_ONLY_FIELDS: dict[str, frozenset[str]] = {
    "tokenizer": frozenset(
        {
            "heading_weight",
            "aligned_joint_weight",
            "extremity_weight",
            "extremity_velocity_weight",
            "foot_height_weight",
            "contact_weight",
            "quantizer_dropout",
        }
    ),
}
#: Config fields added after artifacts were made, with the value at which they change nothing: left
#: out of fingerprints and keys while they hold it, so that an older artifact keeps its fingerprint.
NEUTRAL_FIELDS: dict[str, dict[str, Any]] = {
    "tokenizer": {"num_quantizers": 1},
    "lm": {"text_dropout": 0.0, "guidance_scale": 1.0, "scheduled_sampling": 0.0, "train_context_exclude": "self",
           "context_dropout": 0.0, "pair_dropout": 0.0, "residual_layers": 0, "residual_loss_weight": 1.0},
}


def fingerprint_config(stage: str, config: dict[str, Any]) -> dict[str, Any]:
    """A stage's config as fingerprints and keys see it (`TRAINING_ONLY_FIELDS`, `NEUTRAL_FIELDS`)."""
    skip, neutral = TRAINING_ONLY_FIELDS.get(stage, ()), NEUTRAL_FIELDS.get(stage, {})
    return {k: v for k, v in config.items() if k not in skip and not (k in neutral and v == neutral[k])}


class ArtifactError(RemogptError, RuntimeError):
    """A run directory that is missing, incomplete or does not fit with another artifact."""


class InputFileError(RemogptError, ValueError):
    """A file given by the user that cannot be read as what it should be, or a place that cannot be written."""


_NPY_MAGIC = b"\x93NUMPY"
_TEMPORARY_GLOB = ".*.tmp"  # what `atomic_write_bytes` and the checkpoint writer leave when killed


def load_npy(path: Path | str) -> np.ndarray:
    """Read a .npy file, never unpickling, with a message that says what the file really is.

    NumPy calls every file without its header "pickled data"; a text file renamed to .npy is not
    that, and a user told so looks for the wrong problem."""
    import zipfile

    path = Path(path)
    if path.is_dir():
        raise InputFileError(f"{path}: is a folder, not a .npy file")
    try:
        with path.open("rb") as fh:
            head = fh.read(len(_NPY_MAGIC))
    except FileNotFoundError:
        raise InputFileError(f"{path}: file not found") from None
    except OSError as exc:
        raise InputFileError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if head != _NPY_MAGIC:
        if head[:1] == b"\x80":
            raise InputFileError(f"{path}: holds pickled Python objects, which remogpt never loads; save with np.save")
        kind = "empty" if not head else "not a .npy file (no NumPy header; save arrays with np.save)"
        raise InputFileError(f"{path}: {kind}")
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc):
            raise InputFileError(f"{path}: holds an object array (pickled), which remogpt never loads") from None
        raise InputFileError(f"{path}: damaged .npy file ({first_line(exc)})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InputFileError(f"{path}: damaged .npy file ({first_line(exc)})") from None
    return array


def check_output_file(path: Path | str, option: str) -> Path:
    """Refuse, before any work is done, an output file that is a folder or cannot be created."""
    path = Path(path)
    if path.is_dir():
        raise InputFileError(f"{option} {path}: is a folder; give a file name")
    parent = path.parent if str(path.parent) else Path(".")
    for folder in (parent, *parent.parents):
        if folder.exists():
            if not folder.is_dir():
                raise InputFileError(f"{option} {path}: {folder} is a file, not a folder")
            if not os.access(folder, os.W_OK | os.X_OK):
                raise InputFileError(f"{option} {path}: {folder} is not writable")
            break
    return path


def clean_stale_temporaries(folder: Path | str) -> list[Path]:
    """Remove the temporary files an interrupted atomic write left in `folder` (not recursive)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for tmp in folder.glob(_TEMPORARY_GLOB):
        if tmp.is_file() and not tmp.is_symlink():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _check_replaceable(out: Path, marker: str) -> None:
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise InputFileError(f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / marker).is_file():
        raise InputFileError(f"--out {out}: folder exists and holds other files (no {marker}); choose another")


def replace_folder(staging: Path, out: Path, marker: str) -> None:
    """Move a finished `staging` folder to `out`, replacing a previous output of the same command.

    An existing `out` is replaced only if it is empty or holds `marker` (so it was written by this
    command): a user's unrelated folder is never deleted. Files of the previous output therefore
    never mix with the new ones."""
    import shutil

    _check_replaceable(out, marker)
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(staging, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def staging_folder(out: Path | str, marker: str) -> Path:
    """A fresh folder beside `out` (same file system, so that `replace_folder` is a rename), made only
    if `replace_folder(…, out, marker)` will be allowed to replace `out`: refused before any work."""
    out = Path(out)
    parent = out.parent if str(out.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise InputFileError(f"--out {out}: {parent} is a file, not a folder")
    _check_replaceable(out, marker)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=parent, prefix=f".{out.name}.", suffix=".partial"))
    except OSError as exc:
        raise InputFileError(f"--out {out}: cannot write there ({exc.strerror or exc})") from None


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write via a temporary file and rename, so a crash never leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path | str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_npy(path: Path | str, array: np.ndarray) -> None:
    import io

    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())


def hash_files(paths: Iterable[Path], root: Path | None = None) -> str:
    """sha256 over (relative name, content) of the files, in sorted order."""
    digest = hashlib.sha256()
    items = sorted((Path(p) for p in paths), key=lambda p: str(p.relative_to(root) if root else p))
    for p in items:
        name = str(p.relative_to(root)) if root else p.name
        digest.update(name.encode("utf-8") + b"\0")
        with p.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def hash_folder(
    root: Path | str, patterns: tuple[str, ...] = ("*.txt", "*.npy", "new_joint_vecs/*.npy", "texts/*.txt")
) -> str:
    """Content hash of a data folder: split files, statistics, motions and captions."""
    root = Path(root)
    files: set[Path] = set()
    for pattern in patterns:
        files.update(p for p in root.glob(pattern) if p.is_file())
    if not files:
        raise ArtifactError(f"{root}: no data files to hash")
    # Every stage of a run hashes the same folder (a few seconds each for the embedded data): within
    # one process the hash is reused while no file's size, mtime, ctime or inode has changed. A folder
    # with a file changed in the last seconds is not remembered, since a second change within the
    # clock's granularity would keep its timestamps (git's "racy" rule).
    keys = [_stat_key(p, root) for p in files]
    signature = (str(root.resolve()), tuple(sorted(keys)))
    if signature in _FOLDER_HASHES:
        return _FOLDER_HASHES[signature]
    digest = hash_files(files, root)
    settled = time.time_ns() - 2_000_000_000
    if all(k[2] < settled and k[3] < settled for k in keys):
        if len(_FOLDER_HASHES) >= 8:
            _FOLDER_HASHES.pop(next(iter(_FOLDER_HASHES)))
        _FOLDER_HASHES[signature] = digest
    return digest


_FOLDER_HASHES: dict[tuple, str] = {}


def _stat_key(path: Path, root: Path) -> tuple:
    st = path.stat()
    return (str(path.relative_to(root)), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _versions() -> dict[str, str]:
    import torch

    from remogpt import __version__

    return {
        "remogpt": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
    }


@dataclass
class Manifest:
    """What an artifact is, what made it and from which data."""

    stage: str
    config: dict[str, Any]
    data_hash: str | None = None
    versions: dict[str, str] = field(default_factory=_versions)
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    inputs: dict[str, str] = field(default_factory=dict)  # stage -> fingerprint of artifacts it used
    extra: dict[str, Any] = field(default_factory=dict)
    format: int = MANIFEST_FORMAT

    @property
    def fingerprint(self) -> str:
        """Identifies the artifact's content-defining facts (not its creation time)."""
        payload = json.dumps(
            {
                "stage": self.stage,
                "config": fingerprint_config(self.stage, self.config),
                "data_hash": self.data_hash,
                "inputs": self.inputs,
                "weights": self.extra.get("weights_sha256"),
            },
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True, default=str)


#: The run folder every command uses when none is given: the one `remogpt demo` writes, so that
#: `remogpt generate "…"` works after the demo, and `remogpt train tokenizer && … && remogpt train lm`
#: builds the same layout.
DEFAULT_RUN = Path("runs/demo")
#: Each stage of a run folder, in training order, with the command that builds it.
STAGE_COMMANDS: dict[str, str] = {
    "tokenizer": "remogpt train tokenizer",
    "retriever": "remogpt train retriever",
    "lm": "remogpt train lm",
}
#: Beside a stage's manifest: the settings that made it (written before its training starts).
STAGE_SETTINGS_NAME = "stage_settings.json"
#: What a training was started with, beside its checkpoints (written and compared by `training.fit`).
TRAIN_SETTINGS_NAME = "train_settings.json"


@dataclass(frozen=True)
class RunFolder:
    """A run: one subfolder per trained stage (`tokenizer/`, `retriever/`, `lm/`, each with its
    manifest) and the caches they share (`codes/`). The one owner of that layout and of the
    "stage missing" message, so that every command says the same thing."""

    root: Path

    @classmethod
    def of(cls, path: Path | str) -> RunFolder:
        """The run of `runs/NAME` or of one of its stage folders (`runs/NAME/tokenizer`)."""
        path = Path(path)
        if path.name in STAGE_COMMANDS and (path / MANIFEST_NAME).is_file():
            return cls(path.parent)
        return cls(path)

    def stage(self, name: str) -> Path:
        return self.root / name

    def has(self, name: str) -> bool:
        return (self.root / name / MANIFEST_NAME).is_file()

    def require(self, *names: str) -> None:
        """Refuse a run that lacks one of `names`, saying how to build the first one missing."""
        for name in names:
            if not self.has(name):
                flag = "--run" if name == "lm" else "--out"
                how = f"{STAGE_COMMANDS[name]} {flag} {self.root}"
                raise ArtifactError(f"{self.root}: stage {name}/ is missing (build it with `{how}`)")

    @property
    def codes(self) -> Path:
        """The tokenizer's cached codes of the training data (made by the LM stage)."""
        return self.root / "codes"


class StageCache:
    """Whether a stage folder can be reused, for the jobs that train several stages (demo, ablation).

    The settings that make a stage are recorded in the folder before its training starts. A finished
    stage with the same record (and, when given, the same data hash) is reused; an unfinished one with
    the same record is resumed; one made with other settings, or before settings were recorded, is
    trained again (`policy="retrain"`: the demo owns its run folder) or refused
    (`policy="refuse"`: an ablation's stages can be hours of work, so a person decides)."""

    def __init__(self, policy: str, log: Any = print) -> None:
        if policy not in ("retrain", "refuse"):
            raise ValueError(f"policy must be 'retrain' or 'refuse', got {policy!r}")
        self.policy, self.log = policy, log

    def state(self, stage_dir: Path, settings: Mapping[str, Any], data_hash: str | None = None,
              finished: Any = None) -> str:  # fmt: skip
        """ "done" (reuse it), "resume" (a training with these settings was interrupted) or "new".

        `finished(stage_dir)` says whether the stage is complete (default: its manifest is there)."""
        finished = finished or (lambda d: (d / MANIFEST_NAME).is_file())
        record = stage_dir / STAGE_SETTINGS_NAME
        try:
            stored = json.loads(record.read_text(encoding="utf-8")) if record.is_file() else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            stored = None
        same = stored == json.loads(json.dumps(settings, default=str))
        if same and not (data_hash is not None and self._other_data(stage_dir, data_hash)):
            return "done" if finished(stage_dir) else "resume"
        if not stage_dir.exists() or not any(stage_dir.iterdir()):
            return "new"
        reason = "other settings" if not same else "other data"
        if self.policy == "refuse":
            raise ArtifactError(f"{stage_dir} was made with {reason} than this run's (or before they were "
                                "recorded); delete it or use another work folder")  # fmt: skip
        self.log(f"      {stage_dir} was made with {reason}; training it again")
        shutil.rmtree(stage_dir)
        return "new"

    @staticmethod
    def _other_data(stage_dir: Path, data_hash: str) -> bool:
        if not (stage_dir / MANIFEST_NAME).is_file():
            return False
        try:
            return read_manifest(stage_dir).data_hash != data_hash
        except ArtifactError:
            return True

    @staticmethod
    def record(stage_dir: Path, settings: Mapping[str, Any]) -> None:
        stage_dir.mkdir(parents=True, exist_ok=True)
        text = json.dumps(settings, indent=2, sort_keys=True, default=str) + "\n"
        atomic_write_text(stage_dir / STAGE_SETTINGS_NAME, text)


#: Files and folders that only a remogpt training or artifact leaves, so that `--force` deletes
#: nothing else.
_TRAINING_MARKERS = (MANIFEST_NAME, "checkpoints", TRAIN_SETTINGS_NAME, STAGE_SETTINGS_NAME, "stage1", "stage2")


def clear_for_retraining(folder: Path | str) -> bool:
    """`--force`: delete a stage's folder so that it trains from scratch; True when something was
    deleted. A folder that holds none of a training's files is refused, not deleted."""
    folder = Path(folder)
    if not folder.exists():
        return False
    if not folder.is_dir() or not any((folder / m).exists() for m in _TRAINING_MARKERS):
        raise ArtifactError(f"{folder}: --force deletes only a remogpt training folder, and this is not one "
                            "(no manifest.json, checkpoints/ or train_settings.json); delete it yourself")  # fmt: skip
    shutil.rmtree(folder)
    return True


def retrain_if_forced(force: bool, resume: bool, folder: Path | str) -> None:
    """What every `train` command does with `--force` (and refuses with `--resume` beside it)."""
    import sys

    from remogpt.errors import UsageError

    if force and resume:
        raise UsageError("--force retrains from scratch and --resume continues: give one of them")
    if force and clear_for_retraining(folder):
        print(f"--force: deleted {folder}; training it from scratch", file=sys.stderr, flush=True)


def write_manifest(run_dir: Path | str, manifest: Manifest) -> Path:
    path = Path(run_dir) / MANIFEST_NAME
    atomic_write_text(path, manifest.to_json() + "\n")
    return path


def read_manifest(run_dir: Path | str, stage: str | None = None) -> Manifest:
    path = Path(run_dir) / MANIFEST_NAME
    if not path.is_file():
        raise ArtifactError(f"{run_dir}: no {MANIFEST_NAME} (not a remogpt artifact, or an unfinished run)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path}: not valid JSON ({exc})") from None
    known = set(Manifest.__dataclass_fields__)
    if not isinstance(raw, dict) or "stage" not in raw or "config" not in raw:
        raise ArtifactError(f"{path}: missing 'stage' or 'config'")
    manifest = Manifest(**{k: v for k, v in raw.items() if k in known})
    if manifest.format > MANIFEST_FORMAT:
        raise ArtifactError(f"{path}: manifest format {manifest.format} is newer than this remogpt understands")
    if stage is not None and manifest.stage != stage:
        raise ArtifactError(f"{run_dir}: holds a {manifest.stage!r} artifact, expected {stage!r}")
    return manifest


def save_weights(run_dir: Path | str, tensors: Mapping[str, Any], name: str = WEIGHTS_NAME) -> str:
    """Save tensors as safetensors atomically; returns the file's sha256 (for the manifest)."""
    from safetensors.torch import save

    contiguous = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    data = save(contiguous)
    atomic_write_bytes(Path(run_dir) / name, data)
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path | str) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_weights(path: Path | str, expected_sha256: str | None) -> None:
    """Refuse weights whose bytes differ from those the manifest recorded (truncated, overwritten, swapped).

    A damaged file can load and then yield NaN far from here, so the check is made before loading."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: weights not found")
    if not expected_sha256:
        return  # an artifact from before hashes were recorded: nothing to compare with
    if sha256_file(path) != expected_sha256:
        raise ArtifactError(
            f"{path}: damaged or replaced weights (sha256 differs from {MANIFEST_NAME}); retrain or restore this stage"
        )


def load_weights(run_dir: Path | str, name: str = WEIGHTS_NAME, expected_sha256: str | None = None) -> dict[str, Any]:
    """Read safetensors weights, checked against the manifest's hash when one is given."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(run_dir) / name
    verify_weights(path, expected_sha256)
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise ArtifactError(f"{path}: unreadable safetensors file ({first_line(exc)})") from None
