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
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from remogpt.errors import RemogptError

__all__ = [
    "MANIFEST_NAME",
    "WEIGHTS_NAME",
    "ArtifactError",
    "Manifest",
    "atomic_save_npy",
    "atomic_write_bytes",
    "atomic_write_text",
    "hash_files",
    "hash_folder",
    "load_weights",
    "read_manifest",
    "save_weights",
    "write_manifest",
]

MANIFEST_NAME = "manifest.json"
WEIGHTS_NAME = "model.safetensors"
MANIFEST_FORMAT = 1


class ArtifactError(RemogptError, RuntimeError):
    """A run directory that is missing, incomplete or does not fit with another artifact."""


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
    return hash_files(files, root)


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
                "config": self.config,
                "data_hash": self.data_hash,
                "inputs": self.inputs,
                "weights": self.extra.get("weights_sha256"),
            },
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True, default=str)


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


def load_weights(run_dir: Path | str, name: str = WEIGHTS_NAME) -> dict[str, Any]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(run_dir) / name
    if not path.is_file():
        raise ArtifactError(f"{path}: weights not found")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise ArtifactError(f"{path}: unreadable safetensors file ({exc})") from None
