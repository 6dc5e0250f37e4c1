"""Cached codes of every clip of a data folder, for the language-model stage.

Layout of the cache folder: one `<clip id>.npy` per clip (int16 codes, no pickle; (L,) for one code
layer, (L, q) for a residual tokenizer's q layers) and `index.json`
naming the tokenizer's fingerprint, the content hash of the motions and split files, and each
clip's frame and code counts. A cache is reused only when both hashes match, so changing the
tokenizer or the data re-encodes instead of serving stale codes. The index is written last and
removed first, so an interrupted run never leaves a cache that looks valid.

Codes cover the first l·⌊T/l⌋ frames of a clip (l = 4); clips shorter than l frames are listed
as skipped. Timed-caption segments are cut from a clip's codes by the user (frame f → code f // l),
as MotionGPT does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from remogpt.artifacts import atomic_write_text, hash_folder
from remogpt.data.folder import SPLITS, DataFormatError, check_id, load_features, motion_file, read_split_ids
from remogpt.motion.skeleton import skeleton_for_dim
from remogpt.tokenizer.errors import TokenizerError
from remogpt.tokenizer.tokenizer import MotionTokenizer

__all__ = ["INDEX_NAME", "StaleCodesError", "TokenizeResult", "folder_clip_ids", "load_codes", "tokenize_folder"]

INDEX_NAME = "index.json"
CACHE_FORMAT = 1
_DATA_PATTERNS = ("*.txt", "new_joint_vecs/*.npy")  # what codes depend on: split files and motions


class StaleCodesError(TokenizerError):
    """A cache of codes made by another tokenizer or from other data."""


@dataclass
class TokenizeResult:
    out: Path
    clips: int
    reused: bool
    seconds: float
    fingerprint: str
    skipped: dict[str, str] = field(default_factory=dict)


def folder_clip_ids(root: Path | str) -> list[str]:
    """Clip ids of a folder: the union of its split files in order, or every motion file if it has none."""
    root = Path(root)
    ids: list[str] = []
    splits = [s for s in SPLITS if (root / f"{s}.txt").is_file()]
    if splits:
        seen: set[str] = set()
        for split in splits:
            for clip_id in read_split_ids(root, split):
                if clip_id not in seen:
                    seen.add(clip_id)
                    ids.append(clip_id)
    else:
        vec_dir = root / "new_joint_vecs"
        if not vec_dir.is_dir():
            raise DataFormatError(f"{vec_dir}: directory not found (is {root} a HumanML3D-layout folder?)")
        ids = [check_id(p.stem, str(vec_dir)) for p in sorted(vec_dir.glob("*.npy"))]
    if not ids:
        raise DataFormatError(f"{root}: no clips to tokenize")
    return ids


def _read_index(out: Path) -> dict[str, Any] | None:
    path = out / INDEX_NAME
    if not path.is_file():
        return None
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TokenizerError(f"{path}: not a valid code index ({exc})") from None
    if not isinstance(index, dict) or index.get("format") != CACHE_FORMAT or not isinstance(index.get("clips"), dict):
        raise TokenizerError(f"{path}: not a remogpt code index (format {CACHE_FORMAT})")
    for clip_id in index["clips"]:  # ids become file names in this folder: never let one point outside it
        try:
            check_id(clip_id, str(path))
        except DataFormatError as exc:
            raise TokenizerError(f"{exc}; delete the cache folder to rebuild it") from None
    return index


def _is_current(index: dict[str, Any] | None, out: Path, fingerprint: str, data_hash: str, layers: int) -> bool:
    if index is None or index.get("tokenizer_fingerprint") != fingerprint or index.get("data_hash") != data_hash:
        return False
    if int(index.get("layers", 1)) != layers:  # a cache of the base layer only, from before residual layers
        return False
    return all((out / f"{clip_id}.npy").is_file() for clip_id in index["clips"])


def tokenize_folder(
    tokenizer: MotionTokenizer | Path | str,
    data_root: Path | str,
    out: Path | str,
    batch_size: int = 64,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
) -> TokenizeResult:
    """Encode every clip of `data_root` into `out/` (reused when tokenizer and data are unchanged)."""
    started = time.perf_counter()
    if not isinstance(tokenizer, MotionTokenizer):
        tokenizer = MotionTokenizer.from_pretrained(tokenizer)
    if batch_size < 1:
        raise TokenizerError(f"batch_size must be ≥ 1, got {batch_size}")
    root, out = Path(data_root), Path(out)
    if not root.is_dir():
        raise DataFormatError(f"{root}: data folder not found")
    ids = folder_clip_ids(root)
    data_hash = hash_folder(root, _DATA_PATTERNS)
    fingerprint = tokenizer.fingerprint
    old = _read_index(out)
    layers = tokenizer.num_quantizers
    if not force and _is_current(old, out, fingerprint, data_hash, layers):
        assert old is not None
        return TokenizeResult(out, len(old["clips"]), True, time.perf_counter() - started, fingerprint,
                              dict(old.get("skipped", {})))  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    (out / INDEX_NAME).unlink(missing_ok=True)
    if old is not None:  # remove the stale codes this cache wrote (and nothing else of the folder)
        for clip_id in old["clips"]:
            (out / f"{clip_id}.npy").unlink(missing_ok=True)
    spec = skeleton_for_dim(tokenizer.feature_dim)
    unit = tokenizer.downsample
    dtype = np.int16 if tokenizer.codebook_size <= np.iinfo(np.int16).max else np.int32
    lengths: dict[str, int] = {}
    skipped: dict[str, str] = {}
    for clip_id in ids:  # frame counts from the .npy headers, so that similar lengths share a batch
        path = motion_file(root, clip_id)
        try:
            frames = int(np.load(path, mmap_mode="r", allow_pickle=False).shape[0])
        except (FileNotFoundError, ValueError, OSError, IndexError):
            frames = load_features(path, spec).shape[0]  # raises the clear error for a broken file
        if frames < unit:
            skipped[clip_id] = f"{frames} frames, fewer than {unit}"
        else:
            lengths[clip_id] = frames
    order = sorted(lengths, key=lambda k: lengths[k])
    if progress is not None and skipped:
        progress(len(skipped))
    clips: dict[str, dict[str, int]] = {}
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        features = [load_features(motion_file(root, k), spec) for k in chunk]
        codes, code_lengths = tokenizer.encode_batch(features, crop=True, layers=layers)
        codes_np, lengths_np = codes.cpu().numpy(), code_lengths.cpu().numpy()
        for row, clip_id in enumerate(chunk):
            n = int(lengths_np[row])
            # Plain writes (no fsync per file): validity comes from the index, written atomically last;
            # a file damaged after that is caught by `load_codes` (length and range checks).
            target = out / f"{clip_id}.npy"
            target.unlink(missing_ok=True)  # a symlink planted here is replaced, never written through
            np.save(target, codes_np[row, :n].astype(dtype), allow_pickle=False)
            clips[clip_id] = {"frames": n * unit, "codes": n}
        if progress is not None:
            progress(len(chunk))
    clips = {k: clips[k] for k in ids if k in clips}
    index = {
        "format": CACHE_FORMAT,
        "tokenizer_fingerprint": fingerprint,
        "codebook_size": tokenizer.codebook_size,
        "downsample": unit,
        "layers": layers,
        "data_root": str(root),
        "data_hash": data_hash,
        "dtype": np.dtype(dtype).name,
        "clips": clips,
        "skipped": skipped,
    }
    atomic_write_text(out / INDEX_NAME, json.dumps(index, indent=1) + "\n")
    return TokenizeResult(out, len(clips), False, time.perf_counter() - started, fingerprint, skipped)


def load_codes(out: Path | str, tokenizer: MotionTokenizer | None = None, *, all_layers: bool = False
               ) -> dict[str, np.ndarray]:  # fmt: skip
    """Clip id → codes (int64) from a cache; with `tokenizer`, refuse codes another tokenizer made.

    The base layer (L,), which is what prompts and retrieval show; `all_layers`: (L, q) for a cache
    of a residual tokenizer's q layers (what a language model with a residual head learns to write)."""
    out = Path(out)
    index = _read_index(out)
    if index is None:
        raise TokenizerError(f"{out}: no {INDEX_NAME} (run `remogpt tokenize` first)")
    if tokenizer is not None and index.get("tokenizer_fingerprint") != tokenizer.fingerprint:
        raise StaleCodesError(
            f"{out}: codes were made by tokenizer {index.get('tokenizer_fingerprint')}, not by this one "
            f"({tokenizer.fingerprint}); run `remogpt tokenize` again"
        )
    size = int(index.get("codebook_size", 0))
    layers = int(index.get("layers", 1))
    shape_ok = (lambda a: a.ndim == 1) if layers == 1 else (lambda a: a.ndim == 2 and a.shape[1] == layers)
    codes: dict[str, np.ndarray] = {}
    for clip_id, info in index["clips"].items():
        path = out / f"{clip_id}.npy"
        try:
            arr = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise StaleCodesError(f"{path}: listed in {INDEX_NAME} but missing; run `remogpt tokenize` again") from None
        except (ValueError, OSError, EOFError) as exc:
            raise TokenizerError(f"{path}: unreadable codes ({exc})") from None
        out_of_range = arr.size and (arr.min() < 0 or arr.max() >= size)
        if not shape_ok(arr) or arr.shape[0] != info.get("codes") or out_of_range:
            raise StaleCodesError(f"{path}: does not match {INDEX_NAME}; run `remogpt tokenize` again")
        if arr.ndim == 2 and not all_layers:
            arr = arr[:, 0]
        codes[clip_id] = arr.astype(np.int64)
    return codes
