"""The motion tokenizer (paper, "Motion Tokenization"): a VQ-VAE turning motion into codes and back.

    from remogpt.tokenizer import MotionTokenizer
    tok = MotionTokenizer.from_pretrained("runs/demo")      # runs/demo/tokenizer/
    codes = tok.encode(features)                            # (T, 263) raw features → (T/4,) codes
    features_again = tok.decode(codes)                      # → (T, 263)

Training: `train_tokenizer(TokenizerTrainConfig.preset("tiny"), "runs/demo")`; codes of a whole
data folder, cached for the language model: `tokenize_folder(tok, "data/embedded", "runs/demo/codes")`.
Names are imported lazily so that `remogpt --help` does not load PyTorch Lightning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from remogpt.lazy import lazy_exports

__all__ = [
    "PAD_CODE",
    "MixFolder",
    "MotionTokenizer",
    "StaleCodesError",
    "TokenizeResult",
    "TokenizerConfig",
    "TokenizerError",
    "TokenizerTrainConfig",
    "TrainResult",
    "codebook_stats",
    "load_codes",
    "reconstruction_metrics",
    "tokenize_folder",
    "train_tokenizer",
]

_WHERE = {
    "PAD_CODE": "tokenizer",
    "MixFolder": "config",
    "MotionTokenizer": "tokenizer",
    "StaleCodesError": "cache",
    "TokenizeResult": "cache",
    "TokenizerConfig": "config",
    "TokenizerError": "errors",
    "TokenizerTrainConfig": "config",
    "TrainResult": "train",
    "codebook_stats": "metrics",
    "load_codes": "cache",
    "reconstruction_metrics": "metrics",
    "tokenize_folder": "cache",
    "train_tokenizer": "train",
}

if TYPE_CHECKING:
    from remogpt.tokenizer.cache import StaleCodesError, TokenizeResult, load_codes, tokenize_folder
    from remogpt.tokenizer.config import MixFolder, TokenizerConfig, TokenizerTrainConfig
    from remogpt.tokenizer.errors import TokenizerError
    from remogpt.tokenizer.metrics import codebook_stats, reconstruction_metrics
    from remogpt.tokenizer.tokenizer import PAD_CODE, MotionTokenizer
    from remogpt.tokenizer.train import TrainResult, train_tokenizer


__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
