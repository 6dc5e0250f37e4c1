"""The text–motion matching evaluator of Guo et al. (2022), the one every T2M table is measured with.

Motion: features without the 4 contact dims → 1-D conv movement encoder (×4 downsampling) → BiGRU
over the valid length → 512-d. Text: word vectors + part-of-speech one-hots → BiGRU → 512-d.
Module and parameter names are the reference's, so the official HumanML3D checkpoint
(`text_mot_match/model/finest.tar`) and its GloVe files load when a user has them; otherwise
`remogpt train evaluator` trains one on a data set's train split (word vectors learned from its
captions). It is a separate model from the retriever it may be used to judge.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from remogpt.config import ConfigBase
from remogpt.errors import RemogptError

__all__ = [
    "POS_ENUMERATOR",
    "Evaluator",
    "EvaluatorConfig",
    "EvaluatorError",
    "MotionEncoderBiGRUCo",
    "MovementConvEncoder",
    "TextEncoderBiGRUCo",
    "WordVectorizer",
    "tag_caption",
]


class EvaluatorError(RemogptError, ValueError):
    """An evaluator artifact, checkpoint or input that cannot be used; the message says which."""


# Part-of-speech classes of the reference word vectorizer, in its order, and its "VIP" word lists
# that override the tagger's POS for motion-relevant words.
POS_ENUMERATOR = {
    "VERB": 0, "NOUN": 1, "DET": 2, "ADP": 3, "NUM": 4, "AUX": 5, "PRON": 6, "ADJ": 7, "ADV": 8,
    "Loc_VIP": 9, "Body_VIP": 10, "Obj_VIP": 11, "Act_VIP": 12, "Desc_VIP": 13, "OTHER": 14,
}  # fmt: skip
VIP_WORDS = {
    "Loc_VIP": ("left", "right", "clockwise", "counterclockwise", "anticlockwise", "forward", "back", "backward",
                "up", "down", "straight", "curve"),
    "Body_VIP": ("arm", "chin", "foot", "feet", "face", "hand", "mouth", "leg", "waist", "eye", "knee", "shoulder",
                 "thigh"),
    "Obj_VIP": ("stair", "dumbbell", "chair", "window", "floor", "car", "ball", "handrail", "baseball", "basketball"),
    "Act_VIP": ("walk", "run", "swing", "pick", "bring", "kick", "put", "squat", "throw", "hop", "dance", "jump",
                "turn", "stumble", "dance", "stop", "sit", "lift", "lower", "raise", "wash", "stand", "kneel",
                "stroll", "rub", "bend", "balance", "flap", "jog", "shuffle", "lean", "rotate", "spin", "spread",
                "climb"),
    "Desc_VIP": ("slowly", "carefully", "fast", "careful", "slow", "quickly", "happy", "angry", "sad", "happily",
                 "angrily", "sadly"),
}  # fmt: skip
MAX_TEXT_LEN = 20  # tokens kept per caption (plus sos/eos), as the reference
MAX_MOTION_LEN = 196  # frames motions are zero-padded to (in normalised space), as the reference


@dataclass
class EvaluatorConfig(ConfigBase):
    """Sizes of the matching model. The defaults are the `tiny` preset (about 1.5 M parameters, minutes
    on 2 CPU cores); the paper preset is the official HumanML3D evaluator's (its state dict loads)."""

    dim_word: int = 64  # learnt word vectors here; the official evaluator reads 300-d GloVe
    dim_movement_enc_hidden: int = 128
    dim_movement_latent: int = 128
    dim_motion_hidden: int = 256
    dim_text_hidden: int = 128
    dim_coemb_hidden: int = 128
    unit_length: int = 4
    margin: float = 10.0  # contrastive hinge margin
    lr: float = 5e-4
    batch_size: int = 32
    max_steps: int = 2000
    dropout: float = 0.2

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "paper": {
            "dim_word": 300,
            "dim_movement_enc_hidden": 512,
            "dim_movement_latent": 512,
            "dim_motion_hidden": 1024,
            "dim_text_hidden": 512,
            "dim_coemb_hidden": 512,
            "lr": 1e-4,
            "max_steps": 100000,
        }
    }


class MovementConvEncoder(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, output_size: int, dropout: float = 0.2) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv1d(input_size, hidden_size, 4, 2, 1),
            nn.Dropout(dropout),
            nn.LeakyReLU(0.2),
            nn.Conv1d(hidden_size, output_size, 4, 2, 1),
            nn.Dropout(dropout),
            nn.LeakyReLU(0.2),
        )
        self.out_net = nn.Linear(output_size, output_size)

    def forward(self, inputs: Tensor) -> Tensor:  # (B, T, D) → (B, T/4, out)
        return self.out_net(self.main(inputs.permute(0, 2, 1)).permute(0, 2, 1))


class _BiGRUHead(nn.Module):
    def __init__(self, hidden_size: int, output_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True, bidirectional=True)
        self.output_net = nn.Sequential(
            nn.Linear(hidden_size * 2, hidden_size),
            nn.LayerNorm(hidden_size),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden_size, output_size),
        )
        self.hidden = nn.Parameter(torch.randn((2, 1, hidden_size)))

    def _encode(self, embs: Tensor, lengths: Tensor) -> Tensor:
        hidden = self.hidden.repeat(1, embs.shape[0], 1)
        packed = pack_padded_sequence(embs, lengths.cpu().clamp_min(1), batch_first=True, enforce_sorted=False)
        _, last = self.gru(packed, hidden)
        return self.output_net(torch.cat([last[0], last[1]], dim=-1))


class MotionEncoderBiGRUCo(_BiGRUHead):
    def __init__(self, input_size: int, hidden_size: int, output_size: int) -> None:
        super().__init__(hidden_size, output_size)
        self.input_emb = nn.Linear(input_size, hidden_size)

    def forward(self, inputs: Tensor, m_lens: Tensor) -> Tensor:
        return self._encode(self.input_emb(inputs), m_lens)


class TextEncoderBiGRUCo(_BiGRUHead):
    def __init__(self, word_size: int, pos_size: int, hidden_size: int, output_size: int) -> None:
        super().__init__(hidden_size, output_size)
        self.pos_emb = nn.Linear(pos_size, word_size)
        self.input_emb = nn.Linear(word_size, hidden_size)

    def forward(self, word_embs: Tensor, pos_onehot: Tensor, cap_lens: Tensor) -> Tensor:
        return self._encode(self.input_emb(word_embs + self.pos_emb(pos_onehot)), cap_lens)


# ----------------------------------------------------------------------------- words


class _NoClassUnpickler(pickle.Unpickler):
    """Reads pickles of plain lists/dicts/strings/numbers only: any class reference is refused, so
    loading the reference's GloVe word lists cannot execute code."""

    def find_class(self, module: str, name: str) -> Any:
        raise EvaluatorError(f"refusing to load {module}.{name} from a pickle (only plain data is accepted)")


def _read_plain_pickle(path: Path) -> Any:
    with path.open("rb") as fh:
        return _NoClassUnpickler(fh).load()


_WORD = re.compile(r"[a-z0-9']+")


def tag_caption(text: str) -> list[str]:
    """`lemma/POS` tokens for a caption without a tagger: the embedded grammar's lexicon, else OTHER.

    Real HumanML3D captions come with tokens (spaCy's); this serves generated captions.
    """
    from remogpt.data.synth.captions import LEXICON, VERBS

    inflected = {form: lemma for lemma, forms in VERBS.items() for form in forms}
    tokens = []
    for word in _WORD.findall(text.lower()):
        if word in inflected:
            tokens.append(f"{inflected[word]}/VERB")
        elif word in VERBS and word not in LEXICON:
            tokens.append(f"{word}/VERB")
        elif word in LEXICON:
            lemma, pos = LEXICON[word]
            tokens.append(f"{lemma}/{pos}")
        else:
            tokens.append(f"{word}/OTHER")
    return tokens


class WordVectorizer:
    """Word vectors + POS one-hots of `word/POS` tokens, with the reference's VIP overrides."""

    def __init__(self, vectors: np.ndarray, words: Sequence[str]) -> None:
        if vectors.ndim != 2 or vectors.shape[0] != len(words):
            raise EvaluatorError(f"{vectors.shape[0]} word vectors for {len(words)} words")
        self.vectors = vectors.astype(np.float32)
        self.index = {w: i for i, w in enumerate(words)}
        if "unk" not in self.index:
            raise EvaluatorError("the word list has no 'unk' entry")
        self.vip = {w: k for k, ws in VIP_WORDS.items() for w in ws}

    @property
    def words(self) -> list[str]:
        return sorted(self.index, key=self.index.__getitem__)

    def lookup(self, token: str) -> tuple[int, int]:
        """(word index, POS class) of a `word/POS` token."""
        word, _, pos = token.partition("/")
        if word in self.index:
            pos_key = self.vip.get(word, pos if pos in POS_ENUMERATOR else "OTHER")
            return self.index[word], POS_ENUMERATOR[pos_key]
        return self.index["unk"], POS_ENUMERATOR["OTHER"]

    def encode(self, tokens: Sequence[str]) -> tuple[np.ndarray, np.ndarray, int]:
        """(word ids (22,), POS ids (22,), length) with sos/eos and unk padding, as the reference."""
        toks = list(tokens)[:MAX_TEXT_LEN]
        toks = ["sos/OTHER", *toks, "eos/OTHER"]
        length = len(toks)
        toks += ["unk/OTHER"] * (MAX_TEXT_LEN + 2 - length)
        ids = [self.lookup(t) for t in toks]
        return np.array([i for i, _ in ids]), np.array([p for _, p in ids]), length

    @classmethod
    def from_glove(cls, glove_dir: Path | str, prefix: str = "our_vab") -> WordVectorizer:
        """The reference's GloVe files: `{prefix}_data.npy`, `{prefix}_words.pkl`, `{prefix}_idx.pkl`."""
        d = Path(glove_dir)
        try:
            vectors = np.load(d / f"{prefix}_data.npy", allow_pickle=False)
            words = _read_plain_pickle(d / f"{prefix}_words.pkl")
            idx = _read_plain_pickle(d / f"{prefix}_idx.pkl")
        except FileNotFoundError as exc:
            raise EvaluatorError(f"{d}: GloVe file missing ({Path(exc.filename).name})") from None
        except (pickle.UnpicklingError, EOFError, ValueError) as exc:
            raise EvaluatorError(f"{d}: unreadable GloVe files ({exc})") from None
        if not isinstance(idx, dict) or not isinstance(words, list):
            raise EvaluatorError(f"{d}: GloVe word list/index are not a list and a dict")
        ordered = [None] * len(vectors)
        for w, i in idx.items():
            if 0 <= int(i) < len(vectors):
                ordered[int(i)] = w
        missing = [i for i, w in enumerate(ordered) if w is None]
        if missing:
            raise EvaluatorError(f"{d}: the word index leaves {len(missing)} vectors without a word")
        return cls(vectors, ordered)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- the evaluator


class Evaluator(nn.Module):
    """Embeds motions and captions into the matching space (numpy in, numpy out).

    Motions are raw (unnormalised) 263-d features; the evaluator normalises them with its own
    statistics (the official evaluator has its own Mean/Std, different from the data set's).
    """

    def __init__(self, cfg: EvaluatorConfig, vectorizer: WordVectorizer, mean: np.ndarray, std: np.ndarray,
                 learn_words: bool = True, feature_dim: int = 263) -> None:  # fmt: skip
        super().__init__()
        self.cfg = cfg
        self.vectorizer = vectorizer
        self.feature_dim = feature_dim
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))
        vectors = torch.as_tensor(vectorizer.vectors)
        self.word_emb = nn.Embedding.from_pretrained(vectors, freeze=not learn_words)
        self.movement_encoder = MovementConvEncoder(feature_dim - 4, cfg.dim_movement_enc_hidden,
                                                    cfg.dim_movement_latent, cfg.dropout)  # fmt: skip
        self.motion_encoder = MotionEncoderBiGRUCo(cfg.dim_movement_latent, cfg.dim_motion_hidden, cfg.dim_coemb_hidden)
        self.text_encoder = TextEncoderBiGRUCo(cfg.dim_word, len(POS_ENUMERATOR), cfg.dim_text_hidden,
                                               cfg.dim_coemb_hidden)  # fmt: skip

    # --- tensors in, tensors out (training)
    def motion_embedding(self, normalized: Tensor, lengths: Tensor) -> Tensor:
        movements = self.movement_encoder(normalized[..., :-4])
        return self.motion_encoder(movements, lengths // self.cfg.unit_length)

    def text_embedding(self, word_ids: Tensor, pos_ids: Tensor, lengths: Tensor) -> Tensor:
        pos = nn.functional.one_hot(pos_ids, len(POS_ENUMERATOR)).float()
        return self.text_encoder(self.word_emb(word_ids), pos, lengths)

    # --- numpy in, numpy out (evaluation)
    @torch.no_grad()
    def embed_motions(self, motions: Sequence[np.ndarray], batch_size: int = 64) -> np.ndarray:
        """Raw feature sequences (each (T, 263), T ≥ 4; cropped to a multiple of 4) → (N, dim)."""
        self.eval()
        out = []
        for start in range(0, len(motions), batch_size):
            chunk = [np.asarray(m, dtype=np.float32) for m in motions[start : start + batch_size]]
            for i, m in enumerate(chunk):
                if m.ndim != 2 or m.shape[1] != self.feature_dim:
                    raise EvaluatorError(f"motion {start + i}: expected (T, {self.feature_dim}), got {m.shape}")
                if len(m) < self.cfg.unit_length:
                    raise EvaluatorError(f"motion {start + i}: {len(m)} frames, needs at least {self.cfg.unit_length}")
                if not np.isfinite(m).all():
                    raise EvaluatorError(f"motion {start + i}: contains NaN/inf")
            lengths = torch.tensor([len(m) - len(m) % self.cfg.unit_length for m in chunk])
            # Padded to the reference's fixed 196 frames: the conv sees the same zeros whatever the
            # batch, so an embedding does not depend on its batch mates (and equals the reference's).
            batch = torch.zeros(len(chunk), max(MAX_MOTION_LEN, int(lengths.max())), self.feature_dim)
            for i, m in enumerate(chunk):
                batch[i, : lengths[i]] = torch.from_numpy(m[: lengths[i]])
            normalized = (batch - self.mean) / self.std
            normalized = normalized * (torch.arange(batch.shape[1])[None, :, None] < lengths[:, None, None])
            out.append(self.motion_embedding(normalized, lengths).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.cfg.dim_coemb_hidden), np.float32)

    @torch.no_grad()
    def embed_texts(self, texts: Sequence[str | Sequence[str]], batch_size: int = 256) -> np.ndarray:
        """Captions (strings, tagged with `tag_caption`) or token lists (`word/POS`) → (N, dim)."""
        self.eval()
        out = []
        for start in range(0, len(texts), batch_size):
            encoded = []
            for item in texts[start : start + batch_size]:
                tokens = tag_caption(item) if isinstance(item, str) else list(item)
                encoded.append(self.vectorizer.encode(tokens))
            words = torch.as_tensor(np.stack([e[0] for e in encoded]))
            pos = torch.as_tensor(np.stack([e[1] for e in encoded]))
            lengths = torch.as_tensor([e[2] for e in encoded])
            out.append(self.text_embedding(words, pos, lengths).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.cfg.dim_coemb_hidden), np.float32)

    # --- artifacts
    def save_pretrained(self, run_dir: Path | str, data_hash: str | None = None) -> Path:
        from remogpt.artifacts import Manifest, atomic_write_text, save_weights, write_manifest

        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        sha = save_weights(run_dir, self.state_dict())
        atomic_write_text(run_dir / "words.txt", "\n".join(self.vectorizer.words) + "\n")
        self.cfg.to_yaml(run_dir / "config.yaml")
        write_manifest(run_dir, Manifest(stage="evaluator", config=self.cfg.to_dict(), data_hash=data_hash,
                                         extra={"weights_sha256": sha, "feature_dim": self.feature_dim}))  # fmt: skip
        return run_dir

    @classmethod
    def from_pretrained(cls, run_dir: Path | str) -> Evaluator:
        from remogpt.artifacts import load_weights, read_manifest

        run_dir = Path(run_dir)
        manifest = read_manifest(run_dir, stage="evaluator")
        cfg = EvaluatorConfig.from_dict(manifest.config)
        words = (run_dir / "words.txt").read_text(encoding="utf-8").splitlines()
        state = load_weights(run_dir, expected_sha256=manifest.extra.get("weights_sha256"))
        vectorizer = WordVectorizer(state["word_emb.weight"].numpy(), words)
        model = cls(cfg, vectorizer, state["mean"].numpy(), state["std"].numpy(),
                    feature_dim=int(manifest.extra.get("feature_dim", 263)))  # fmt: skip
        model.load_state_dict(state)
        model.manifest = manifest  # type: ignore[assignment]
        return model.eval()

    @classmethod
    def from_official(
        cls, checkpoint: Path | str, glove_dir: Path | str, mean: Path | str, std: Path | str
    ) -> Evaluator:
        """The official HumanML3D evaluator: `text_mot_match/model/finest.tar`, its GloVe folder, and
        the evaluator's `meta/mean.npy`/`std.npy`. Read with torch.load(weights_only=True)."""
        checkpoint = Path(checkpoint)
        try:
            state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise EvaluatorError(f"{checkpoint}: not found") from None
        except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:
            raise EvaluatorError(
                f"{checkpoint}: not a loadable plain checkpoint ({str(exc).splitlines()[0]})"
            ) from None
        missing = [k for k in ("movement_encoder", "text_encoder", "motion_encoder") if k not in state]
        if missing:
            raise EvaluatorError(f"{checkpoint}: missing {missing} (expected the text_mot_match finest.tar)")
        vectorizer = WordVectorizer.from_glove(glove_dir)
        mean_arr = np.load(mean, allow_pickle=False)
        std_arr = np.load(std, allow_pickle=False)
        model = cls(EvaluatorConfig.preset("paper"), vectorizer, mean_arr, std_arr, learn_words=False,
                    feature_dim=int(mean_arr.shape[0]))  # fmt: skip
        for name in ("movement_encoder", "text_encoder", "motion_encoder"):
            try:
                getattr(model, name).load_state_dict(state[name])
            except RuntimeError as exc:
                raise EvaluatorError(f"{checkpoint}: {name} does not fit ({str(exc).splitlines()[0]})") from None
        return model.eval()
