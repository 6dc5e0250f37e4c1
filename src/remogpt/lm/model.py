"""The T5 motion–language model (Hugging Face `T5ForConditionalGeneration`) over the joint vocabulary.

`MotionT5` is T5 plus one optional addition, learned *motion position* embeddings: a motion token's
offset from its `<som>` (in the prompt's retrieved motions) or from the start of the output motion
gets one shared vector, added to the token's embedding. T5 has only relative position biases, and
cross-attention has none, so a decoder can copy a retrieved motion only by content ("find the code
I just wrote, write the next"); motion codes come in runs and repeats (a held pose is one code many
times), which makes that ambiguous, and a small model then learns to copy very slowly. With the
shared offsets, writing code t of a motion next to code t of the retrieved one is one attention
step. With `motion_positions = 0` (the paper preset) the model is exactly T5.

The second, also optional, is an *aligned copy* head (`motion_copy_slots`): while it writes code t
of a motion, the model adds to the logit of code t of each retrieved motion in its prompt (and to
`<eom>` where a retrieved motion ends) a weight computed from its decoder state, one per prompt
motion. Copying a retrieved motion, or the part of it that fits, is then a single learned gate
rather than an attention pattern to discover, so a model trained for minutes starts from "at
least as good as its context" (a pointer-generator-like copy, aligned by offset). With 0 it is off.

The third, for captions (`caption_copy_slots`), does the same for the retrieved *captions*: while
writing a caption, each caption in the prompt votes, with a gate from the decoder state, for the
token that follows the token just written wherever that token occurs in it (for its first token
at the first step, for `</s>` after its last). Captions differ in length, so the alignment is by
content, not offset: after an inserted or dropped word the vote re-synchronises at the next shared
word. Copying the nearest training caption is the strongest simple captioning baseline; with this
head it is one gate away for a model trained for minutes, which can then edit where the motion
differs. The caption spans are found between the `Text:` and `Motion:` markers after `Context:`.

The fourth, for a residual tokenizer (`residual_layers`), writes the codes of the layers after the
first: the T5's tokens are the base layer's codes, and for each code it writes, a small head reads
the decoder state there (which has attended to the text and the context) with that code, and
predicts layer 2's code, then layer 3's from those plus layer 2's, and so on (MoMask's residual
layers, here a head of the same decoder rather than a second transformer). The base layer alone
decodes coarsely; the residual layers carry the detail (a hand's side, a hop's height), so a model
that copies a retrieved motion's base codes can still paint the detail its text asks for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import T5ForConditionalGeneration

from remogpt.lm.config import LMConfig
from remogpt.lm.vocab import MotionVocabulary

__all__ = ["MotionT5", "ResidualHead", "build_t5", "load_t5", "set_dropout"]


class ResidualHead(nn.Module):
    """Codes of the residual layers 2 … q+1 of each written base code, from the decoder state there.

    Layer j's code is predicted from the normalised decoder state, the base code's token embedding
    and the embeddings of the codes of layers 2 … j−1 (teacher-forced in training, its own argmax
    at inference), through one shared MLP told the layer by an embedding, and one output map per layer."""

    def __init__(self, d_model: int, layers: int, codes: int) -> None:
        super().__init__()
        self.layers, self.codes = layers, codes
        self.norm = nn.LayerNorm(d_model)
        self.base = nn.Linear(d_model, d_model, bias=False)
        self.code_embedding = nn.Embedding(layers * codes, d_model)
        self.layer_embedding = nn.Embedding(layers, d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 2 * d_model), nn.GELU(), nn.Linear(2 * d_model, d_model))
        self.out_norm = nn.LayerNorm(d_model)
        self.out = nn.Parameter(torch.randn(layers, codes, d_model) * d_model**-0.5)
        self.out_bias = nn.Parameter(torch.zeros(layers, codes))

    def _layer_logits(self, x: torch.Tensor, j: int) -> torch.Tensor:
        h = x + self.layer_embedding.weight[j]
        h = self.out_norm(h + self.mlp(h))
        return h @ self.out[j].T + self.out_bias[j]

    def forward(self, state: torch.Tensor, base_embedding: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """(B, T, d) states, (B, T, d) base-code embeddings, (B, T, layers) true codes (−100 where
        none) → (B, T, layers, codes) logits, layer j given the true codes of the layers before it."""
        x = self.norm(state) + self.base(base_embedding)
        logits = []
        for j in range(self.layers):
            logits.append(self._layer_logits(x, j))
            if j + 1 < self.layers:
                x = x + self.code_embedding(residual[..., j].clamp(min=0) + j * self.codes)
        return torch.stack(logits, dim=2)

    @torch.no_grad()
    def predict(self, state: torch.Tensor, base_embedding: torch.Tensor) -> torch.Tensor:
        """(B, T, layers) codes, each layer the argmax given the layers predicted before it."""
        x = self.norm(state) + self.base(base_embedding)
        out = []
        for j in range(self.layers):
            code = self._layer_logits(x, j).argmax(-1)
            out.append(code)
            x = x + self.code_embedding(code + j * self.codes)
        return torch.stack(out, dim=2)


class MotionT5(T5ForConditionalGeneration):
    """T5 with optional motion position embeddings and aligned copy head (see the module docstring);
    saved in Hugging Face layout."""

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        n = int(getattr(config, "motion_positions", 0) or 0)
        self.motion_position = nn.Embedding(n, config.d_model) if n else None
        if n:
            nn.init.normal_(self.motion_position.weight, std=config.initializer_factor)
        self.copy_gate = _copy_gate(config)
        self.caption_gate = _caption_gate(config)
        layers = int(getattr(config, "residual_layers", 0) or 0)
        self.residual_head = ResidualHead(config.d_model, layers, int(config.motion_codes)) if layers else None
        self.residual_loss: torch.Tensor | None = None  # the residual head's loss in the last forward
        self._decoder_state: torch.Tensor | None = None  # the lm_head's input of the last forward
        self._generation_context: torch.Tensor | None = None  # aligned prompt motions while generating
        self._generation_captions: torch.Tensor | None = None  # prompt captions while generating
        self._generation_history: torch.Tensor | None = None  # the decoder ids so far, while generating
        self.lm_head.register_forward_pre_hook(self._keep_decoder_state)

    def _keep_decoder_state(self, _module: nn.Module, args: tuple) -> None:
        if self.copy_gate is not None or self.caption_gate is not None or self.residual_head is not None:
            self._decoder_state = args[0]

    def add_copy_gate(self, slots: int) -> None:
        """Give a (pretrained) model the aligned copy head, starting at zero (no effect)."""
        self.config.motion_copy_slots = slots
        self.copy_gate = _copy_gate(self.config)

    def add_caption_gate(self, slots: int, text_marker: list[int], motion_marker: list[int],
                         context_marker: list[int]) -> None:  # fmt: skip
        """Give a (pretrained) model the caption copy head, starting at zero (no effect)."""
        self.config.update({"caption_copy_slots": slots, "text_marker_ids": list(text_marker),
                            "motion_marker_ids": list(motion_marker),
                            "context_marker_ids": list(context_marker)})  # fmt: skip
        self.caption_gate = _caption_gate(self.config)

    def prompt_captions(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(B, S) prompt ids → (B, slots, L + 1) ids: caption n of the prompt's context (the tokens
        between a `Text:` marker after `Context:` and the next `Motion:` marker), then `</s>`; −1 pads.
        A caption cut off by truncation (no `Motion:` after it) is left out."""
        slots = int(self.config.caption_copy_slots)
        text_marker, motion_marker = list(self.config.text_marker_ids), list(self.config.motion_marker_ids)
        b, n = input_ids.shape
        device = input_ids.device
        index = torch.arange(n, device=device).expand(b, n)
        none = torch.full_like(index, -1)
        context_marker = list(getattr(self.config, "context_marker_ids", None) or [])
        in_context = torch.ones_like(input_ids, dtype=torch.bool)
        if context_marker:  # a "Text:" in the instruction (a user's caption) is not a retrieved caption
            in_context = torch.where(_marker_at(input_ids, context_marker), index, none).cummax(1).values >= 0
        shift = len(text_marker)
        text_start = torch.zeros_like(in_context)  # the first token after a Text: marker
        text_start[:, shift:] = (_marker_at(input_ids, text_marker) & in_context)[:, : n - shift]
        at_motion = _marker_at(input_ids, motion_marker)
        last_start = torch.where(text_start, index, none).cummax(1).values
        last_motion = torch.where(at_motion, index, none).cummax(1).values
        inside = (last_start >= 0) & (last_motion < last_start)  # in a caption, before its Motion: marker
        was_inside = torch.cat([torch.zeros_like(inside[:, :1]), inside[:, :-1]], dim=1)
        closes = at_motion & (was_inside | (text_start & (last_start == index)))  # (or an empty caption)
        slot = text_start.long().cumsum(1) - 1
        rows = torch.arange(b, device=device)[:, None].expand(b, n)
        closed = torch.zeros((b, slots + 1), dtype=torch.bool, device=device)
        mark = closes & (slot < slots)
        closed[rows[mark], slot[mark]] = True
        keep = ((inside & ~at_motion) | closes) & (slot >= 0) & (slot < slots)
        keep &= closed.gather(1, slot.clamp(0, slots))
        offset = index - last_start
        length = int(offset[keep].max()) + 1 if bool(keep.any()) else 1
        out = torch.full((b, slots, length), -1, dtype=torch.long, device=device)
        values = torch.where(closes, torch.full_like(input_ids, int(self.config.eos_token_id)), input_ids)
        out[rows[keep], slot[keep], offset[keep]] = values[keep]
        return out

    def _caption_bias(self, logits: torch.Tensor, decoder_input_ids: torch.Tensor, past: int,
                      captions: torch.Tensor) -> torch.Tensor:  # fmt: skip
        """The logits plus each prompt caption's gated votes for the token after the one just written:
        one vote where that token matches (unigram), a second where the one before it matches too
        (bigram, which tells apart the several places a common word like "the" occurs)."""
        b, t, _ = logits.shape
        if captions.shape[0] != b:
            captions = captions.repeat_interleave(b // captions.shape[0], dim=0)
        slots, length = captions.shape[1], captions.shape[2]
        position = past + torch.arange(t, device=logits.device)
        first = position == 0  # predicting the caption's first token
        # The token before each decoder input (START at position 1, where the input is the first
        # token written), from the generation history when a cache hides the earlier inputs.
        history = self._generation_history
        if past and history is not None and history.shape[0] == b and history.shape[1] >= past:
            full = torch.cat([history[:, :past], decoder_input_ids], dim=1)
        elif past:
            full = None
        else:
            full = decoder_input_ids
        start_id = -3
        if full is not None:
            none, start = torch.full_like(full[:, :1], -2), torch.full_like(full[:, :1], start_id)
            before = torch.cat([none, start, full[:, 1:-1]], dim=1)[:, : full.shape[1]]
            previous = before[:, past:]  # (B, T)
        else:
            previous = torch.full_like(decoder_input_ids, -2)
        current = captions[:, :, :-1]  # (B, slots, L − 1): the token just written, matched at i → vote for i + 1
        nxt = captions[:, :, 1:]
        valid = (current >= 0) & (nxt >= 0)
        uni = (decoder_input_ids[:, None, :, None] == current[:, :, None, :]) & valid[:, :, None, :]
        uni &= ~first[None, None, :, None]
        current_before = torch.cat([torch.full_like(current[:, :, :1], start_id), current[:, :, :-1]], dim=2)
        bi = uni & (previous[:, None, :, None] == current_before[:, :, None, :])
        at_start = first[None, None, :, None] & (captions[:, :, None, :1] >= 0)  # (B, slots, T, 1)
        tokens = torch.cat([captions[:, :, :1], nxt], dim=2).clamp(min=0)  # (B, slots, L)
        gate = self.caption_gate(self._decoder_state).transpose(1, 2)  # (B, 2·slots, T)
        g_uni, g_bi = gate[:, :slots, :, None], gate[:, slots:, :, None]
        dtype = logits.dtype
        votes_first = at_start.to(dtype) * (g_uni + g_bi)
        votes_next = uni.to(dtype) * g_uni + bi.to(dtype) * g_bi
        hit = torch.cat([votes_first, votes_next], dim=3)  # (B, slots, T, L)
        src = hit.permute(0, 2, 1, 3).reshape(b, t, slots * length)
        index = tokens[:, :, None, :].expand(b, slots, t, length).permute(0, 2, 1, 3).reshape(b, t, slots * length)
        return logits + torch.zeros_like(logits).scatter_add_(2, index, src)

    def aligned_context(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(B, S) prompt ids → (B, slots, L) ids: motion n of the prompt's code t (its `<eom>` at
        t = its length), −1 where there is none; L is `motion_positions` (or 64)."""
        slots = self.config.motion_copy_slots
        length = int(getattr(self.config, "motion_positions", 0) or 0) or 64
        b, n = input_ids.shape
        index = torch.arange(n, device=input_ids.device).expand_as(input_ids)
        is_som = input_ids == self.config.som_token_id
        last_som = torch.where(is_som, index, torch.full_like(index, -1)).cummax(1).values
        slot = is_som.long().cumsum(1) - 1
        offset = index - last_som - 1
        keep = (self._motion_mask(input_ids) | (input_ids == self.config.eom_token_id)) & (last_som >= 0)
        keep &= (slot < slots) & (offset < length)
        out = torch.full((b, slots, length), -1, dtype=torch.long, device=input_ids.device)
        rows = torch.arange(b, device=input_ids.device)[:, None].expand_as(input_ids)
        out[rows[keep], slot[keep], offset[keep]] = input_ids[keep]
        return out

    def _copy_bias(self, logits: torch.Tensor, decoder_input_ids: torch.Tensor, past: int,
                   context: torch.Tensor) -> torch.Tensor:  # fmt: skip
        """The logits plus each prompt motion's gated vote for its code at the position being written."""
        b, t, _ = logits.shape
        if context.shape[0] != b:  # generate() expanded the batch (beams, several sequences per prompt)
            context = context.repeat_interleave(b // context.shape[0], dim=0)
        slots, length = context.shape[1], context.shape[2]
        offset = past + torch.arange(t, device=logits.device) - 1  # target at decoder position p is code p − 1
        inside = (decoder_input_ids == self.config.som_token_id) | self._motion_mask(decoder_input_ids)
        token = context.gather(2, offset.clamp(0, length - 1).expand(b, slots, t))  # (B, slots, T)
        ok = inside[:, None, :] & ((offset >= 0) & (offset < length))[None, None, :] & (token >= 0)
        gate = self.copy_gate(self._decoder_state).transpose(1, 2)  # (B, slots, T)
        vote = torch.zeros_like(logits)
        vote.scatter_add_(2, token.clamp(min=0).transpose(1, 2), (gate * ok.to(gate.dtype)).transpose(1, 2))
        return logits + vote

    def _motion_mask(self, ids: torch.Tensor) -> torch.Tensor:
        first = self.config.motion_offset
        return (ids >= first) & (ids < first + self.config.motion_codes)

    def embed_encoder_inputs(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Token embeddings, plus each motion code's offset from the last `<som>` before it."""
        embeds = self.shared(input_ids)
        if self.motion_position is None:
            return embeds
        index = torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
        som_at = torch.where(input_ids == self.config.som_token_id, index, torch.full_like(index, -1))
        last_som = som_at.cummax(1).values
        offset = (index - last_som - 1).clamp(0, self.motion_position.num_embeddings - 1)
        keep = self._motion_mask(input_ids) & (last_som >= 0)
        return embeds + self.motion_position(offset) * keep[..., None].to(embeds.dtype)

    def embed_decoder_inputs(self, decoder_input_ids: torch.Tensor, past: int) -> torch.Tensor:
        """Output motions start at decoder position 2 (start token, `<som>`), so code t sits at t + 2."""
        embeds = self.shared(decoder_input_ids)
        if self.motion_position is None:
            return embeds
        position = past + torch.arange(decoder_input_ids.shape[1], device=decoder_input_ids.device)
        offset = (position - 2).clamp(0, self.motion_position.num_embeddings - 1).expand_as(decoder_input_ids)
        keep = self._motion_mask(decoder_input_ids)
        return embeds + self.motion_position(offset) * keep[..., None].to(embeds.dtype)

    def forward(self, input_ids: Any = None, attention_mask: Any = None, decoder_input_ids: Any = None,
                **kwargs: Any) -> Any:  # fmt: skip
        """T5's forward, plus the heads; `residual_labels` (B, T, layers), aligned with `labels` (−100
        where a label is no motion code), adds the residual head's loss (`residual_loss_weight` ×)."""
        residual_labels = kwargs.pop("residual_labels", None)
        self.residual_loss = None
        out = self._forward(input_ids, attention_mask, decoder_input_ids, **kwargs)
        if residual_labels is not None and self.residual_head is not None:
            labels = kwargs.get("labels")
            if labels is None:
                raise ValueError("residual_labels need the labels they are aligned with")
            logits = self.residual_head(self._decoder_state, self.shared(labels.clamp(min=0)), residual_labels)
            keep = residual_labels >= 0
            if bool(keep.any()):
                loss = nn.functional.cross_entropy(logits[keep], residual_labels[keep])
            else:  # a batch without motion targets: zero, but every parameter in the graph (DDP)
                loss = logits.sum() * 0.0
            self.residual_loss = loss.detach()
            weight = float(getattr(self.config, "residual_loss_weight", 1.0))
            out.loss = loss * weight if out.loss is None else out.loss + loss * weight
        return out

    def residual_codes(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                       sequences: torch.Tensor) -> torch.Tensor:  # fmt: skip
        """Generated sequences (B, 1 + T: the start token, then what was written) → (B, T, layers)
        residual codes of each written token (meaningful where it is a motion code), from one
        teacher-forced pass over the prompt and the sequence."""
        if self.residual_head is None:
            raise ValueError("this model has no residual head (its tokenizer has one code layer)")
        with torch.no_grad():
            self._forward(input_ids, attention_mask, sequences[:, :-1])
            written = sequences[:, 1:]
            return self.residual_head.predict(self._decoder_state, self.shared(written))

    def _forward(self, input_ids: Any = None, attention_mask: Any = None, decoder_input_ids: Any = None,
                 **kwargs: Any) -> Any:  # fmt: skip
        heads = self.copy_gate is not None or self.caption_gate is not None
        if self.motion_position is None and not heads:
            return super().forward(input_ids=input_ids, attention_mask=attention_mask,
                                   decoder_input_ids=decoder_input_ids, **kwargs)  # fmt: skip
        labels = kwargs.pop("labels", None) if heads else kwargs.get("labels")
        if decoder_input_ids is None and kwargs.get("decoder_inputs_embeds") is None and labels is not None:
            decoder_input_ids = self._shift_right(labels)
        context, captions = self._generation_context, self._generation_captions
        if input_ids is not None:
            if self.copy_gate is not None:
                context = self.aligned_context(input_ids)
            if self.caption_gate is not None:
                captions = self.prompt_captions(input_ids)
        cache = kwargs.get("cache") if kwargs.get("cache") is not None else kwargs.get("past_key_values")
        past = int(cache.get_seq_length()) if cache is not None else 0
        decoder_ids = decoder_input_ids
        if self.motion_position is not None:
            if input_ids is not None and kwargs.get("encoder_outputs") is None and kwargs.get("inputs_embeds") is None:
                kwargs["inputs_embeds"], input_ids = self.embed_encoder_inputs(input_ids), None
            if decoder_input_ids is not None and kwargs.get("decoder_inputs_embeds") is None:
                kwargs["decoder_inputs_embeds"] = self.embed_decoder_inputs(decoder_input_ids, past)
                decoder_input_ids = None
        out = super().forward(input_ids=input_ids, attention_mask=attention_mask,
                              decoder_input_ids=decoder_input_ids, **kwargs)  # fmt: skip
        if not heads:
            return out
        if decoder_ids is None or (self.copy_gate is not None and context is None) or (
                self.caption_gate is not None and captions is None):  # fmt: skip
            raise ValueError("the copy heads need the prompt's token ids (use generate_from_ids)")
        logits = out.logits
        if self.copy_gate is not None:
            logits = self._copy_bias(logits, decoder_ids, past, context)
        if self.caption_gate is not None:
            logits = self._caption_bias(logits, decoder_ids, past, captions)
        out.logits = logits
        if labels is not None:
            out.loss = nn.functional.cross_entropy(out.logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
        return out

    def prepare_inputs_for_generation(self, input_ids: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        """Keeps the whole decoder history (the caption head's bigram needs the token before the last)."""
        self._generation_history = input_ids
        return super().prepare_inputs_for_generation(input_ids, *args, **kwargs)

    def generate_from_ids(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **kwargs: Any) -> Any:
        """`generate` on token ids; the encoder gets its motion positions and the copy head its
        prompt motions too (generate calls the encoder directly, then passes no prompt ids)."""
        self._generation_context = self.aligned_context(input_ids) if self.copy_gate is not None else None
        self._generation_captions = self.prompt_captions(input_ids) if self.caption_gate is not None else None
        try:
            if self.motion_position is None:
                return self.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
            return self.generate(inputs_embeds=self.embed_encoder_inputs(input_ids), attention_mask=attention_mask,
                                 **kwargs)  # fmt: skip
        finally:
            self._generation_context = self._generation_captions = self._generation_history = None


def _copy_gate(config: Any) -> nn.Linear | None:
    """One gate per prompt motion, from the decoder state; zero at the start (plain T5 logits)."""
    return _zero_gate(config, int(getattr(config, "motion_copy_slots", 0) or 0))


def _caption_gate(config: Any) -> nn.Linear | None:
    """Two gates (unigram, bigram) per prompt caption, from the decoder state; zero at the start."""
    return _zero_gate(config, 2 * int(getattr(config, "caption_copy_slots", 0) or 0))


def _zero_gate(config: Any, outputs: int) -> nn.Linear | None:
    """A linear map from the decoder state to `outputs` gates, all zero at first; None for 0 outputs."""
    if not outputs:
        return None
    gate = nn.Linear(config.d_model, outputs)
    nn.init.zeros_(gate.weight)
    nn.init.zeros_(gate.bias)
    return gate


def _marker_at(input_ids: torch.Tensor, marker: list[int]) -> torch.Tensor:
    """(B, S) bool: where the token sequence `marker` starts."""
    b, n = input_ids.shape
    out = torch.zeros((b, n), dtype=torch.bool, device=input_ids.device)
    if n >= len(marker):
        windows = input_ids.unfold(1, len(marker), 1)
        out[:, : n - len(marker) + 1] = (windows == torch.tensor(marker, device=input_ids.device)).all(-1)
    return out


def caption_markers(vocab: MotionVocabulary) -> tuple[list[int], list[int], list[int]]:
    """The token ids of the prompt's `Text:`, `Motion:` and `Context:` markers, as inside a prompt."""
    from remogpt.lm.prompts import ContextPair, PromptBuilder

    pairs = [ContextPair("y", vocab.motion_string([0])), ContextPair("y", vocab.motion_string([0]))]
    probe = PromptBuilder.from_file().motion_to_text(vocab.motion_string([0]), pairs)
    tok = vocab.tokenizer
    ids = torch.tensor([tok(probe, add_special_tokens=False).input_ids])
    markers = [tok(f" {name}", add_special_tokens=False).input_ids for name in ("Text:", "Motion:", "Context:")]
    for name, marker in zip(("Text:", "Motion:", "Context:"), markers, strict=True):
        if not bool(_marker_at(ids, marker).any()):  # a tokenizer that splits the marker differently in context
            raise ValueError(f"the prompt marker {name!r} does not tokenise the same inside a prompt")
    return markers[0], markers[1], markers[2]


def load_t5(path: Path | str, expected_sha256: str | None = None) -> MotionT5:
    """A saved language model (Hugging Face folder), in eval mode; its weights checked against the
    manifest's hash first, because damaged weights load and only fail later as NaN while sampling."""
    from remogpt.artifacts import ArtifactError, verify_weights
    from remogpt.errors import first_line

    verify_weights(Path(path) / "model.safetensors", expected_sha256)
    try:
        return MotionT5.from_pretrained(str(path), local_files_only=True).eval()
    except (OSError, ValueError, RuntimeError) as exc:
        raise ArtifactError(f"{path}: unreadable language model ({first_line(exc)})") from None


def set_dropout(model: Any, rate: float) -> Any:
    """Train with `rate`, whatever the model was built or loaded with.

    A T5 creates its dropout layers from its own config once, so a loaded model (a finished stage 1,
    a pretrained Flan-T5) would otherwise keep the rate it was saved with and ignore the run's
    `dropout_rate`; the config is updated too, so that the saved model says what it trained with."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = rate
    model.config.dropout_rate = rate
    return model


def build_t5(cfg: LMConfig, vocab: MotionVocabulary, codebook: np.ndarray | None = None) -> Any:
    """A T5 of the configured size from scratch, or the local pretrained one of `cfg.lm_init`,
    with its embeddings resized to the text + motion vocabulary; with `cfg.motion_embedding_init ==
    "codebook"` the motion-token rows start from `codebook` (the tokenizer's (K, D) code vectors)."""
    model = _t5(cfg, vocab)
    model.config.update({"motion_offset": vocab.motion_offset, "motion_codes": vocab.codebook_size,
                         "som_token_id": vocab.som_id, "eom_token_id": vocab.eom_id})  # fmt: skip
    if cfg.motion_positions and model.motion_position is None:  # a local pretrained T5 gains them
        model.config.motion_positions = cfg.motion_positions
        model.motion_position = nn.Embedding(cfg.motion_positions, model.config.d_model)
        nn.init.normal_(model.motion_position.weight, std=model.config.initializer_factor)
    if cfg.motion_copy_slots and model.copy_gate is None:  # likewise the copy head
        model.add_copy_gate(cfg.motion_copy_slots)
    if cfg.caption_copy_slots and model.caption_gate is None:  # and the caption copy head
        model.add_caption_gate(cfg.caption_copy_slots, *caption_markers(vocab))
    if cfg.residual_layers and model.residual_head is None:  # and the residual layers' head
        model.config.update({"residual_layers": cfg.residual_layers, "residual_loss_weight": cfg.residual_loss_weight})
        model.residual_head = ResidualHead(model.config.d_model, cfg.residual_layers, vocab.codebook_size)
    if cfg.motion_embedding_init == "codebook":
        if codebook is None or codebook.shape[0] != vocab.codebook_size:
            raise ValueError(f"codebook initialisation needs the tokenizer's {vocab.codebook_size} code vectors")
        init_motion_embeddings(model, vocab, codebook, seed=0)
    return model


def init_motion_embeddings(model: Any, vocab: MotionVocabulary, codebook: np.ndarray, seed: int = 0) -> None:
    """Write the codebook into the motion-token rows of the input (and, untied, output) embeddings.

    The centred code vectors are mapped to d_model by PCA (D ≥ d_model) or a random orthonormal
    map (D < d_model), both of which keep their distances up to scale, then scaled to the spread of
    the text-token rows, so neither kind of token dominates at the start."""
    emb = model.get_input_embeddings().weight
    d_model = emb.shape[1]
    c = np.asarray(codebook, dtype=np.float64)
    c = c - c.mean(axis=0)
    if c.shape[1] >= d_model:
        _, _, vt = np.linalg.svd(c, full_matrices=False)
        x = c @ vt[:d_model].T
    else:
        q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d_model, c.shape[1])))
        x = c @ q.T
    rows = slice(vocab.motion_offset, vocab.motion_offset + vocab.codebook_size)
    with torch.no_grad():
        text_std = float(emb[: vocab.motion_offset].std())
        x = x / max(float(x.std()), 1e-8) * text_std
        emb[rows] = torch.as_tensor(x, dtype=emb.dtype)
        out = model.get_output_embeddings()
        if out is not None and out.weight.data_ptr() != emb.data_ptr():
            scale = float(out.weight[: vocab.motion_offset].std()) / text_std
            out.weight[rows] = torch.as_tensor(x, dtype=out.weight.dtype) * scale


def _t5(cfg: LMConfig, vocab: MotionVocabulary) -> Any:
    from transformers import T5Config

    if cfg.lm_init is not None:
        from remogpt.lm.vocab import VocabularyError

        try:
            model = MotionT5.from_pretrained(str(cfg.lm_init), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise VocabularyError(f"{cfg.lm_init}: not a loadable T5 folder ({str(exc).splitlines()[0]})") from None
        model.resize_token_embeddings(len(vocab))
        model.config.motion_positions = 0
        model.config.motion_copy_slots = 0
        model.config.caption_copy_slots = 0
        return set_dropout(model, cfg.dropout_rate).train()  # from_pretrained returns eval mode (dropout off)
    t5_cfg = T5Config(
        vocab_size=len(vocab),
        d_model=cfg.d_model,
        d_kv=cfg.d_kv,
        d_ff=cfg.d_ff,
        num_layers=cfg.num_layers,
        num_decoder_layers=cfg.num_decoder_layers,
        num_heads=cfg.num_heads,
        dropout_rate=cfg.dropout_rate,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=cfg.tie_embeddings,
        pad_token_id=vocab.pad_id,
        eos_token_id=vocab.eos_id,
        decoder_start_token_id=vocab.pad_id,
        motion_positions=cfg.motion_positions,
        motion_copy_slots=cfg.motion_copy_slots,
        motion_offset=vocab.motion_offset,
        motion_codes=vocab.codebook_size,
        som_token_id=vocab.som_id,
        eom_token_id=vocab.eom_id,
    )
    return MotionT5(t5_cfg)
