"""Configuration of the motion–language model stage (sizes, retrieval for prompts, training)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from remogpt.config import ConfigBase, ConfigError, DataConfig
from remogpt.training import TrainerConfig

__all__ = ["RERANK_SCORES", "LMConfig", "RetrievalPromptConfig"]

Modality = Literal["none", "t2t", "t2m", "both"]
Schedule = Literal["constant", "cosine"]
GoldSlot = Literal["cross", "same", "any"]
EmbeddingInit = Literal["random", "codebook"]
RerankScore = Literal["retriever", "captioner", "both"]
ContextExclude = Literal["self", "caption", "composition"]
CONTEXT_EXCLUDES: tuple[str, ...] = ("self", "caption", "composition")
RERANK_SCORES: tuple[str, ...] = ("retriever", "captioner", "both")


@dataclass
class RetrievalPromptConfig(ConfigBase):
    """Which retrieved pairs go into the prompt (paper: both modalities, k = 1 each).

    For text-to-motion "t2m" means text→motion retrieval and "t2t" text→text; for captioning the
    same settings select motion→text ("t2m" side) and motion→motion ("t2t" side).
    """

    modality: Modality = "both"
    k: int = 1  # per modality
    # A retrieved motion's tokens are cut to this length in the prompt (49 codes = 196 frames, the
    # longest HumanML3D motion: whole motions, so that what is copied from the context is complete).
    max_context_codes: int = 49
    # Training only: the share of prompts in which one retrieved pair (see gold_slot) is the sample's
    # own (another caption, its motion), so that copying from the context is learnt early.
    # 1.0 in tiny: at the demo budget (850 steps, one seed, 512 test prompts, matching evaluator)
    # the copy head with 1.0 gave R-Top1 0.49 / FID 1.01 / captions CIDEr 132, with 0.5 0.45 / 0.84
    # / 121; without the head 0.75 gave 0.29 / 4.3 / 119 and 1.0 0.37 / 3.6 / 128 (older tokenizer).
    gold_rate: float = 1.0
    # Where the sample's own pair goes: "cross" replaces the first cross-modal pair (the model then
    # learns to copy that slot; a text→text-only setting gets none); "same" the first same-modality
    # pair (text→text for generation, motion→motion for captioning), or the first pair when the
    # modality has none. "any" replaces one pair chosen at random, so the model has to find the
    # pair whose caption (or motion) matches its input before copying it (demo budget, copy head:
    # R-Top1 0.48 vs 0.49 for "cross"; without the head captions fell from CIDEr 128 to 111).
    # "same" (was "cross"): the nearest training caption's motion is the better copy (text→text copy
    # R-Top1 0.61 against 0.57 text→motion), and so is the caption of the nearest training motion; at
    # the demo budget (same tokenizer and retriever, seeds 0 and 1, the matching evaluator) R-Top1
    # went 0.525 → 0.563 and 0.534 → 0.547, captions CIDEr 131.6 → 141.5 and 123.8 → 148.4.
    gold_slot: GoldSlot = "same"

    def __post_init__(self) -> None:
        if self.k < 0:
            raise ConfigError(f"retrieval k must be ≥ 0, got {self.k}")
        if not 0.0 <= self.gold_rate <= 1.0:
            raise ConfigError(f"gold_rate must be in [0, 1], got {self.gold_rate}")
        if self.gold_slot not in ("cross", "same", "any"):
            raise ConfigError(f"gold_slot must be 'cross', 'same' or 'any', got {self.gold_slot!r}")
        if self.max_context_codes < 1:
            raise ConfigError(f"max_context_codes must be ≥ 1, got {self.max_context_codes}")


@dataclass
class LMConfig(ConfigBase):
    """T5 sizes and the two training stages; the dataclass defaults are the `tiny` (CPU) preset."""

    # T5 (tiny: ≈2M parameters, ~50 samples/s on 2 CPU cores; paper: T5-base, 12 + 12 layers)
    d_model: int = 128
    d_ff: int = 512
    num_layers: int = 3
    num_decoder_layers: int = 3
    num_heads: int = 4
    d_kv: int = 32
    # 0 in tiny: at the long CPU budget the model does overfit (loss/token 0.98 train, 1.62 held out),
    # but 0.1 / 0.2 in stage 2 made the samples worse (R-Top1 0.447 / 0.426 vs 0.497; lm_dropout_val.md).
    # Paper preset: 0.1, T5's.
    dropout_rate: float = 0.0
    text_vocab_size: int = 2000  # for the BPE trained on the captions (ignored with lm_init)
    lm_init: Path | None = None  # a local pretrained T5/Flan-T5 folder (model + tokenizer)
    codebook_size: int = 512
    # Code layers of the tokenizer beyond its first (set from the tokenizer at training, as
    # codebook_size): the T5 writes the base layer as its tokens, and a small head on its decoder
    # state writes the residual layers of each code it wrote (MoMask's residual layers, read from
    # the text and context through the decoder state; lm/model.py). 0: a one-codebook tokenizer.
    residual_layers: int = 0
    residual_loss_weight: float = 1.0  # the residual head's cross-entropy, beside the tokens' loss
    max_input_tokens: int = 512
    max_target_tokens: int = 64
    max_motion_codes: int = 49  # generated motions stop here: 196 frames, HumanML3D's longest clip
    # Stage 1: motion–language pre-training without context; stage 2: instruction tuning with it.
    stage1_steps: int = 1500
    stage2_steps: int = 1500
    lr: float = 2e-3
    stage2_lr: float = 2e-3
    weight_decay: float = 0.0
    length_buckets: bool = True  # batches of similar prompt length (less padding, faster)
    # Classifier-free guidance can use a model that also knows motion without its text: this share of
    # the text→motion items is trained with an empty caption (the context stays). 0: off, as the paper;
    # 0.1 in stage 2 did not help guidance on the long budget (validation, one run).
    text_dropout: float = 0.0
    # Training only, stage 2: what a training item's retrieved context leaves out. "self": the item,
    # its mirror and their timed parts (always). "caption": also every training clip that has one of
    # its captions. "composition": also, on the embedded data (labels.jsonl), every clip with the same
    # composition (actions, counts, sides, directions): the context then never holds the answer, as
    # at inference on a composition the database lacks, and copying it is no longer the best guess.
    # Inference retrieval is unchanged.
    train_context_exclude: ContextExclude = "self"
    # Training only, stage 2: the share of items trained with no context at all, and, of the rest,
    # the chance that each retrieved pair is left out; so that the text must carry the motion.
    context_dropout: float = 0.0
    pair_dropout: float = 0.0
    # Continuation (MotionGPT's motion prediction) as an instruction task of its own: this share of
    # the text→motion items becomes "the motion so far (its last `continue_prompt_codes` codes) and
    # the caption of the whole motion → the rest", cut at a random code, with the same retrieval
    # as text→motion (each retrieved motion shown from the cut on). 0: off, as the paper, and
    # `generate --from` then continues by handing the decoder the last codes (lm/editing.py).
    # 0.3 in tiny: at the demo budget (one demo's tokenizer and retriever, LM seeds 0-2,
    # benchmarks/lm_continue.py) continuing 100 test clips' second halves went from FID 0.75-0.82 to
    # 0.24-0.33 (the retrieved copy: 0.24), joint error 510-511 → 516-523 mm; text→motion R-Top1
    # 0.587-0.592 → 0.585-0.588, FID 0.51-0.55 → 0.53-0.56, captions unchanged.
    continue_rate: float = 0.3
    continue_prompt_codes: int = 12  # 48 frames of the motion so far in the instruction
    # Of the continuation items, this share has another training clip as the motion so far and this
    # clip's motion, from its start, as the rest: a change of action, as at a timeline's seam
    # (whose segment retrieves for its own text). 0: every continuation continues its own clip.
    transition_rate: float = 0.0
    # Parallel scheduled sampling (Duckworth et al. 2019): a first, gradient-free pass samples the
    # model's own motion codes (at `temperature`), and up to this share of the motion codes in the
    # decoder's input is replaced by them, rising linearly from 0 over each stage; the targets stay the
    # truth. It trains the model to go on from its own samples, as it must when it generates. 0: off
    # (teacher forcing, as the paper). Long budget (3,000 + 4,000 steps, `none`), rate 1, 3 seeds, test:
    # plain R-Top1 0.501-0.516 → 0.536-0.555, FID 0.65-0.72 → 0.35-0.40, captions unchanged; stage 2
    # about 5 % slower (README, "Scheduled sampling"). Off here: the demo's copying model gains nothing
    # (3 fresh demos, R-Top1 0.552-0.559 either way) and its LM steps get 20 % slower; stage 1 with it
    # is not measured (the runs above applied it in stage 2 only).
    scheduled_sampling: float = 0.0
    warmup_steps: int = 100  # linear warm-up at the start of each stage
    schedule: Schedule = "cosine"  # after warm-up: "constant", or "cosine" decay to 0 at the stage's end
    # Input and output embeddings shared (T5's own default, also T5-base's): a token read in the
    # prompt and the same token written share one vector, which makes copying from context easy.
    tie_embeddings: bool = True
    # "codebook": motion-token embeddings start from the VQ codebook (projected to d_model), so codes
    # that decode to similar motion start close; "random": T5's initialisation.
    motion_embedding_init: EmbeddingInit = "codebook"
    # Learned position embeddings of motion tokens (offsets 0 … N−1, shared by prompt and output),
    # so that a small model can copy a retrieved motion in step (see lm/model.py); 0: plain T5.
    motion_positions: int = 64
    # The aligned copy head (see lm/model.py): a gated vote for code t of each of the first N
    # motions in the prompt while writing code t; 0: plain T5 logits.
    motion_copy_slots: int = 6
    # The caption copy head (see lm/model.py): a gated vote, per prompt caption, for the token after
    # the one just written wherever it occurs in that caption; 0: off. Demo budget, 3 fresh demos:
    # captions CIDEr 123–138 with it, 65–97 without (text→motion unchanged).
    caption_copy_slots: int = 2
    # Sampling defaults of `generate` (text → motion): a small model's distribution is flat, and
    # sharper sampling gave closer and more realistic motions (tiny, demo budget: R-Top1 0.20 → 0.34,
    # FID 6.9 → 4.6 from T 1 / top-100 to T 0.4 / top-20).
    temperature: float = 0.4
    top_k: int = 20
    # Best of N: every generated motion is the one of N samples that matches the text best, by
    # `rerank_score` (1: off, as the paper). N× the sampling time; `generate --rerank N` sets it per call.
    rerank_candidates: int = 1
    # What picks the best of N: "retriever" (the PL-TMR cosine of text and candidate), "captioner"
    # (the model's own captioner: mean log-probability of the text as the candidate's caption) or
    # "both" (the two standardised within the N candidates and added). Validation split, 60-min tiny
    # `none`, 640 prompts: R-Top1 0.606 / 0.599 / 0.620 at N = 8 and 0.606 / – / 0.627 at N = 16.
    rerank_score: RerankScore = "both"
    # Classifier-free guidance for text→motion (1: off, as the paper): log p(·|prompt) weighed
    # `guidance_scale` times against log p(·|the prompt without its text); up to 2× the sampling time.
    # `generate --guidance S` sets it per call. Long budget (tiny, 7,000 steps, six recipes): S = 1.5
    # raised test R-Top1 in all six (+0.019 mean) and lowered FID (−0.25); the demo's copying model: no change.
    guidance_scale: float = 1.0
    retrieval: RetrievalPromptConfig = field(default_factory=RetrievalPromptConfig)
    data: DataConfig = field(default_factory=DataConfig)  # the train split the LM learns from
    #: batch size, devices, precision, seed, checkpoints — as every stage's; `max_steps` is not read:
    #: the two stages run `stage1_steps` and `stage2_steps`.
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(batch_size=16))

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # tiny, trained to compose rather than copy: no item's context holds its own pair or any clip
        # with one of its captions or its composition (benchmarks/lm_compose.py).
        "tiny_compose": {"train_context_exclude": "composition", "retrieval": {"gold_rate": 0.0}},
        "paper": {
            "d_model": 768,
            "d_ff": 3072,
            "num_layers": 12,
            "num_decoder_layers": 12,
            "num_heads": 12,
            "d_kv": 64,
            "text_vocab_size": 32000,
            "stage1_steps": 300000,
            "stage2_steps": 100000,
            "lr": 2e-4,
            "stage2_lr": 1e-4,  # the paper's instruction-tuning learning rate
            "dropout_rate": 0.1,
            "trainer": {"batch_size": 16},  # the paper's instruction-tuning batch size
            "retrieval": {"modality": "both", "k": 1, "max_context_codes": 50, "gold_rate": 0.0},  # as the paper
            "motion_embedding_init": "random",  # MotionGPT (the paper's base code) adds motion tokens at random
            "motion_positions": 0,  # plain T5, as the paper
            "motion_copy_slots": 0,
            "caption_copy_slots": 0,
            "continue_rate": 0.0,  # the paper trains no continuation task
            "temperature": 1.0,  # MotionGPT's sampling
            "top_k": 100,
        },
    }

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "") -> LMConfig:
        if "batch_size" in data:  # written before the trainer settings moved into `trainer` (old manifests)
            data = dict(data)
            data["trainer"] = {**(data.get("trainer") or {}), "batch_size": data.pop("batch_size")}
        return super().from_dict(data, where)

    def __post_init__(self) -> None:
        for name in ("d_model", "d_ff", "num_layers", "num_decoder_layers", "num_heads", "d_kv",
                     "max_input_tokens", "max_target_tokens"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if self.stage1_steps < 0 or self.stage2_steps < 0 or self.stage1_steps + self.stage2_steps == 0:
            raise ConfigError("stage1_steps and stage2_steps must be ≥ 0 and not both 0")
        if self.lr <= 0 or self.stage2_lr <= 0:
            raise ConfigError(f"learning rates must be > 0, got {self.lr}, {self.stage2_lr}")
        if self.motion_positions < 0:
            raise ConfigError(f"motion_positions must be ≥ 0, got {self.motion_positions}")
        if self.motion_copy_slots < 0:
            raise ConfigError(f"motion_copy_slots must be ≥ 0, got {self.motion_copy_slots}")
        if self.caption_copy_slots < 0:
            raise ConfigError(f"caption_copy_slots must be ≥ 0, got {self.caption_copy_slots}")
        if self.warmup_steps < 0:
            raise ConfigError(f"warmup_steps must be ≥ 0, got {self.warmup_steps}")
        if self.schedule not in ("constant", "cosine"):
            raise ConfigError(f"schedule must be 'constant' or 'cosine', got {self.schedule!r}")
        if self.motion_embedding_init not in ("random", "codebook"):
            raise ConfigError(
                f"motion_embedding_init must be 'random' or 'codebook', got {self.motion_embedding_init!r}"
            )
        if not 0.0 <= self.scheduled_sampling <= 1.0:
            raise ConfigError(f"scheduled_sampling must be in [0, 1], got {self.scheduled_sampling}")
        if self.train_context_exclude not in CONTEXT_EXCLUDES:
            raise ConfigError(
                f"train_context_exclude must be one of {', '.join(CONTEXT_EXCLUDES)}, "
                f"got {self.train_context_exclude!r}"
            )
        for name in ("context_dropout", "pair_dropout"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0.0 <= self.continue_rate <= 1.0:
            raise ConfigError(f"continue_rate must be in [0, 1], got {self.continue_rate}")
        if not 0.0 <= self.transition_rate <= 1.0:
            raise ConfigError(f"transition_rate must be in [0, 1], got {self.transition_rate}")
        if self.continue_prompt_codes < 1:
            raise ConfigError(f"continue_prompt_codes must be ≥ 1, got {self.continue_prompt_codes}")
        if not 0.0 <= self.text_dropout < 1.0:
            raise ConfigError(f"text_dropout must be in [0, 1), got {self.text_dropout}")
        if not (math.isfinite(self.guidance_scale) and self.guidance_scale >= 1.0):
            raise ConfigError(f"guidance_scale must be ≥ 1 (1: off), got {self.guidance_scale}")
        if self.rerank_candidates < 1:
            raise ConfigError(f"rerank_candidates must be ≥ 1, got {self.rerank_candidates}")
        if self.rerank_score not in RERANK_SCORES:
            raise ConfigError(f"rerank_score must be one of {', '.join(RERANK_SCORES)}, got {self.rerank_score!r}")
        if not self.temperature > 0 or self.top_k < 1:
            raise ConfigError(f"temperature must be > 0 and top_k ≥ 1, got {self.temperature}, {self.top_k}")
        if self.residual_layers < 0 or self.residual_loss_weight < 0:
            raise ConfigError(f"residual_layers and residual_loss_weight must be ≥ 0, got {self.residual_layers}, "
                              f"{self.residual_loss_weight}")  # fmt: skip
        if self.codebook_size < 2:
            raise ConfigError(f"codebook_size must be ≥ 2, got {self.codebook_size}")
