"""ReMoGPT: the retrieval-augmented T5 motion–language model (paper, "ReMoGPT"; Fig. 3 and 5; Eq. 1, 4).

    from remogpt.lm import ReMoGPT
    model = ReMoGPT.from_pretrained("runs/demo")
    model.generate_motion(["a person jumps twice then waves"])[0].joints   # (T, 22, 3)
    model.caption([features])                                              # ["a person ..."]
    model.continue_motion("then waves", features).features                 # the motion, then more
    model.inbetween(start, end, frames=40) · model.edit_parts(features, "waves", "arms")
    model.timeline(parse_timeline("walks forward (4 s); then sits down (3 s)"))

Names are imported on first use, so `import remogpt.lm` stays cheap (no torch/transformers).
"""

from __future__ import annotations

from remogpt.lazy import lazy_exports

_EXPORTS = {
    "LMConfig": "config",
    "RetrievalPromptConfig": "config",
    "RERANK_SCORES": "config",
    "MotionVocabulary": "vocab",
    "VocabularyError": "vocab",
    "DecodedMotion": "vocab",
    "PromptBuilder": "prompts",
    "ContextPair": "prompts",
    "build_t5": "model",
    "train_lm": "train",
    "LMTrainResult": "train",
    "ReMoGPT": "remogpt",
    "GeneratedMotion": "remogpt",
    "EditedMotion": "editing",
    "TimelineEntry": "editing",
    "parse_timeline": "editing",
    "read_timeline_file": "editing",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
