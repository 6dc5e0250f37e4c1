"""Decoding rules of the language model: the motion grammar and per-row seeded sampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from remogpt.lm import MotionVocabulary, PromptBuilder
from remogpt.lm.decoding import ClassifierFreeGuidance, MotionGrammar, SeededSampler, row_seed


@pytest.fixture(scope="module")
def vocab() -> MotionVocabulary:
    captions = ["a person walks forward.", "someone waves."] * 5
    # 400 merges: enough that every caption word is one token next to the templates' words (the
    # bigram test needs "walks" whole in both places it occurs).
    return MotionVocabulary.build(
        captions, PromptBuilder.from_file().all_texts(), codebook_size=16, text_vocab_size=400
    )


def _decode(vocab: MotionVocabulary, processors: list, scores_fn, steps: int, batch: int) -> torch.Tensor:
    """Greedy decoding over given raw scores, the way `generate(do_sample=False)` applies processors."""
    ids = torch.full((batch, 1), vocab.pad_id)
    for step in range(steps):
        scores = scores_fn(step)
        for p in processors:
            scores = p(ids, scores)
        ids = torch.cat([ids, scores.argmax(-1, keepdim=True)], dim=1)
    return ids


def test_the_grammar_makes_every_sequence_a_valid_motion(vocab: MotionVocabulary):
    gen = torch.Generator().manual_seed(0)
    v = len(vocab)
    # Adversarial scores: text tokens, <eom> and </s> are the most likely tokens at random steps.
    boost = [vocab.eos_id, vocab.eom_id, 5, 17, vocab.som_id]

    def scores(step: int) -> torch.Tensor:
        s = torch.randn(8, v, generator=gen)
        s[:, boost[step % len(boost)]] += 50.0
        return s

    ids = _decode(vocab, [MotionGrammar(vocab, min_codes=3, max_codes=6)], scores, steps=12, batch=8)
    for row in ids.tolist():
        generated = row[1:]
        assert generated[0] == vocab.som_id
        end = generated.index(vocab.eom_id)
        codes = generated[1:end]
        assert 3 <= len(codes) <= 6
        assert all(vocab.motion_offset <= c < vocab.motion_offset + vocab.codebook_size for c in codes)
        assert generated[end + 1] == vocab.eos_id
        decoded = vocab.decode_motion(generated, min_codes=3)
        assert decoded.valid and len(decoded.codes) == len(codes)


def test_the_grammar_closes_a_motion_at_its_longest(vocab: MotionVocabulary):
    def scores(_step: int) -> torch.Tensor:  # a model that never wants to stop
        s = torch.zeros(2, len(vocab))
        s[:, vocab.motion_offset + 3] = 10.0
        s[:, vocab.eom_id] = -10.0
        return s

    ids = _decode(vocab, [MotionGrammar(vocab, min_codes=1, max_codes=4)], scores, steps=7, batch=2)
    assert vocab.decode_motion(ids[0, 1:].tolist()).codes.tolist() == [3, 3, 3, 3]
    assert ids[0, -2:].tolist() == [vocab.eom_id, vocab.eos_id]
    with pytest.raises(ValueError):
        MotionGrammar(vocab, min_codes=5, max_codes=4)


def test_seeded_sampling_draws_from_the_filtered_softmax():
    logits = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0])
    temperature, n = 0.7, 20000
    sampler = SeededSampler(range(n), temperature=temperature, top_k=3)
    picks = sampler(torch.zeros(n, 1, dtype=torch.long), logits.repeat(n, 1)).argmax(-1).numpy()
    kept = np.exp(logits[:3].numpy() / temperature)
    expected = kept / kept.sum()  # an independent computation of the top-3 softmax at temperature 0.7
    observed = np.bincount(picks, minlength=5) / n
    assert observed[3:].sum() == 0  # filtered by top-k
    np.testing.assert_allclose(observed[:3], expected, atol=0.012)
    top1 = SeededSampler([0, 1, 2], top_k=1)(torch.zeros(3, 1, dtype=torch.long), torch.randn(3, 9))
    assert torch.isfinite(top1).sum() == 3  # top-1 leaves exactly the arg-max per row


def test_each_row_has_its_own_stream():
    scores = torch.randn(1, 50)
    alone = SeededSampler([7])(torch.zeros(1, 1, dtype=torch.long), scores)
    batched = SeededSampler([3, 7, 9])(torch.zeros(3, 1, dtype=torch.long), scores.repeat(3, 1))
    assert torch.equal(alone[0], batched[1])  # the row seeded 7 draws the same, whatever its neighbours
    assert not torch.equal(batched[0], batched[1])
    assert row_seed(0, "a person waves", 0) == row_seed(0, "a person waves", 0)
    assert len({row_seed(0, "a person waves", s) for s in range(4)} | {row_seed(1, "a person waves", 0)}) == 5
    with pytest.raises(ValueError, match="temperature"):
        SeededSampler([0], temperature=0.0)
    with pytest.raises(ValueError, match="top_k"):
        SeededSampler([0], top_k=0)


def test_guidance_weighs_the_text_against_its_absence():
    """Both halves of the doubled batch get log p_u + s (log p_c - log p_u) of their pair, checked
    against an independent computation; scale 1 is the conditional distribution; what the model
    rules out stays out; and with the same seeds both halves sample the same token."""
    torch.manual_seed(0)
    scores = torch.randn(6, 11)
    scores[1, 4] = float("-inf")  # a conditional row that rules token 4 out
    guided = ClassifierFreeGuidance(2.5)(torch.zeros(6, 1, dtype=torch.long), scores)
    cond = scores[:3].numpy() - np.log(np.exp(scores[:3].numpy()).sum(-1, keepdims=True))
    unc = scores[3:].numpy() - np.log(np.exp(scores[3:].numpy()).sum(-1, keepdims=True))
    expected = unc + 2.5 * (cond - unc)
    expected[1, 4] = -np.inf
    np.testing.assert_allclose(guided[:3].numpy(), expected, rtol=1e-5)
    assert torch.equal(guided[:3], guided[3:])
    plain = ClassifierFreeGuidance(1.0)(torch.zeros(6, 1, dtype=torch.long), scores)
    np.testing.assert_allclose(plain[:3].numpy(), cond, rtol=1e-5)
    picks = SeededSampler([5, 6, 7] * 2)(torch.zeros(6, 1, dtype=torch.long), guided).argmax(-1)
    assert torch.equal(picks[:3], picks[3:]) and picks[1] != 4
    with pytest.raises(ValueError, match="even batch"):
        ClassifierFreeGuidance(2.0)(torch.zeros(3, 1, dtype=torch.long), scores[:3])
    with pytest.raises(ValueError, match="≥ 1"):
        ClassifierFreeGuidance(0.5)


def _greedy_without_cache(model, prompt, grammar, start: int, length: int) -> list[int]:
    """The same greedy decoding as generate(), every step recomputed from scratch (no cache)."""
    ids = [start]
    with torch.no_grad():
        while len(ids) < length:
            logits = model(input_ids=prompt.input_ids, attention_mask=prompt.attention_mask,
                           decoder_input_ids=torch.tensor([ids])).logits[:, -1]  # fmt: skip
            ids.append(int(grammar(torch.tensor([ids]), logits).argmax()))
    return ids


def test_motion_positions_are_the_same_with_and_without_the_generation_cache(vocab: MotionVocabulary):
    from remogpt.lm import LMConfig
    from remogpt.lm.model import MotionT5, build_t5

    cfg = LMConfig(d_model=32, d_ff=64, num_layers=1, num_decoder_layers=1, num_heads=2, d_kv=16, codebook_size=16,
                   motion_embedding_init="random", motion_positions=8)  # fmt: skip
    torch.manual_seed(0)
    model = build_t5(cfg, vocab).eval()
    assert isinstance(model, MotionT5) and model.motion_position.num_embeddings == 8
    prompt = vocab.tokenizer(["Generate motion: a person walks Motion: " + vocab.motion_string([1, 1, 1, 2, 3])],
                             return_tensors="pt")  # fmt: skip
    # The same code at offsets 0, 1, 2 of a motion gets three different input vectors; text gets none.
    embeds = model.embed_encoder_inputs(prompt.input_ids)[0]
    codes = (prompt.input_ids[0] == vocab.motion_offset + 1).nonzero().flatten()
    assert len(codes) == 3 and not torch.allclose(embeds[codes[0]], embeds[codes[1]])
    assert torch.equal(embeds[0], model.shared(prompt.input_ids)[0, 0])
    grammar = MotionGrammar(vocab, min_codes=3, max_codes=6)
    cached = model.generate_from_ids(prompt.input_ids, prompt.attention_mask, do_sample=False, max_new_tokens=9,
                                     logits_processor=[grammar], use_cache=True)[0].tolist()  # fmt: skip
    assert _greedy_without_cache(model, prompt, grammar, vocab.pad_id, len(cached)) == cached
    off = build_t5(cfg.replace(motion_positions=0), vocab)
    assert off.motion_position is None and torch.equal(off.embed_encoder_inputs(prompt.input_ids),
                                                       off.shared(prompt.input_ids))  # fmt: skip


def test_a_saved_model_keeps_its_motion_positions(vocab: MotionVocabulary, tmp_path):
    from remogpt.lm import LMConfig
    from remogpt.lm.model import build_t5, load_t5

    cfg = LMConfig(d_model=32, d_ff=64, num_layers=1, num_decoder_layers=1, num_heads=2, d_kv=16, codebook_size=16,
                   motion_embedding_init="random", motion_positions=8)  # fmt: skip
    model = build_t5(cfg, vocab)
    model.save_pretrained(str(tmp_path / "lm"))
    again = load_t5(tmp_path / "lm")
    assert torch.equal(again.motion_position.weight, model.motion_position.weight)
    assert again.config.som_token_id == vocab.som_id and again.config.motion_offset == vocab.motion_offset


def _copy_model(vocab: MotionVocabulary, slots: int = 3, caption_slots: int = 0):
    from remogpt.lm import LMConfig
    from remogpt.lm.model import build_t5

    cfg = LMConfig(d_model=32, d_ff=64, num_layers=1, num_decoder_layers=1, num_heads=2, d_kv=16, codebook_size=16,
                   motion_embedding_init="random", motion_positions=8, motion_copy_slots=slots,
                   caption_copy_slots=caption_slots)  # fmt: skip
    torch.manual_seed(0)
    return build_t5(cfg, vocab).eval()


def test_the_copy_head_lines_up_each_prompt_motion_by_offset(vocab: MotionVocabulary):
    model = _copy_model(vocab, slots=2)
    first, second = [3, 3, 5], [7, 1]
    prompt = (f"Generate motion: a person walks Text: a Motion: {vocab.motion_string(first)} "
              f"Text: b Motion: {vocab.motion_string(second)} ### Output:")  # fmt: skip
    ids = vocab.tokenizer([prompt, "Generate motion: nothing retrieved"], return_tensors="pt", padding=True).input_ids
    ctx = model.aligned_context(ids)
    assert ctx.shape == (2, 2, 8)
    code = vocab.motion_offset
    assert ctx[0, 0, :4].tolist() == [code + 3, code + 3, code + 5, vocab.eom_id] and (ctx[0, 0, 4:] == -1).all()
    assert ctx[0, 1, :3].tolist() == [code + 7, code + 1, vocab.eom_id] and (ctx[0, 1, 3:] == -1).all()
    assert (ctx[1] == -1).all()  # no motion in the prompt: nothing to copy
    # A fresh head has a zero gate: the logits are plain T5's.
    dec = torch.tensor([[vocab.pad_id, vocab.som_id, code + 3]])
    with torch.no_grad():
        with_head = model(input_ids=ids[:1], decoder_input_ids=dec).logits
        model.copy_gate, plain = None, model(input_ids=ids[:1], decoder_input_ids=dec).logits
    assert torch.allclose(with_head, plain)


def test_a_strong_copy_gate_reproduces_the_prompt_motion_with_and_without_cache(vocab: MotionVocabulary):
    model = _copy_model(vocab, slots=2)
    with torch.no_grad():
        model.copy_gate.bias.copy_(torch.tensor([50.0, 0.0]))  # always copy the first prompt motion
    motion = [4, 4, 9, 2, 11]
    text = (f"Generate motion: x Text: a Motion: {vocab.motion_string(motion)} "
            f"Text: b Motion: {vocab.motion_string([1, 2])} ### Output:")  # fmt: skip
    prompt = vocab.tokenizer([text], return_tensors="pt")
    grammar = MotionGrammar(vocab, min_codes=1, max_codes=8)
    cached = model.generate_from_ids(prompt.input_ids, prompt.attention_mask, do_sample=False, max_new_tokens=12,
                                     logits_processor=[grammar], use_cache=True)[0].tolist()  # fmt: skip
    decoded = vocab.decode_motion(cached[1:])
    assert decoded.problem is None and decoded.codes.tolist() == motion  # copied code by code, ended where it ends
    assert _greedy_without_cache(model, prompt, grammar, vocab.pad_id, len(cached)) == cached
    # Training: the loss is computed on the copy-biased logits, so it is near zero for the copied motion.
    target = vocab.tokenizer([vocab.motion_string(motion)], return_tensors="pt").input_ids
    with torch.no_grad():
        loss = model(input_ids=prompt.input_ids, attention_mask=prompt.attention_mask, labels=target).loss
    assert float(loss) < 0.3 * float(np.log(len(vocab)))  # <som> and </s> are not copied; the codes are


def _caption_model(vocab: MotionVocabulary):
    return _copy_model(vocab, slots=2, caption_slots=2)


def _caption_prompt(vocab: MotionVocabulary, first: str, second: str):
    from remogpt.lm.prompts import ContextPair

    pairs = [ContextPair(first, vocab.motion_string([4, 5])), ContextPair(second, vocab.motion_string([6]))]
    return PromptBuilder.from_file().motion_to_text(vocab.motion_string([1, 2, 3]), pairs)


def test_the_caption_head_finds_each_retrieved_caption_between_the_markers(vocab: MotionVocabulary):
    model = _caption_model(vocab)
    tok = vocab.tokenizer
    prompts = [_caption_prompt(vocab, "someone waves.", "a person walks forward."), "Generate text: <som><eom>"]
    enc = tok(prompts, return_tensors="pt", padding=True)
    captions = model.prompt_captions(enc.input_ids)
    assert captions.shape[:2] == (2, 2)
    for slot, text in enumerate(["someone waves.", "a person walks forward."]):
        expected = tok(" " + text, add_special_tokens=False).input_ids + [vocab.eos_id]
        row = [i for i in captions[0, slot].tolist() if i >= 0]
        assert row == expected  # the caption's own tokens, then </s> where it ends
    assert (captions[1] == -1).all()  # no context: nothing to copy
    from remogpt.lm.prompts import ContextPair

    pairs = [ContextPair("someone waves.", "<som><eom>")]
    odd = PromptBuilder.from_file().text_to_motion("a man says Text: hello", pairs)
    found = model.prompt_captions(tok([odd], return_tensors="pt").input_ids)
    expected = tok(" someone waves.", add_special_tokens=False).input_ids + [vocab.eos_id]
    assert [i for i in found[0, 0].tolist() if i >= 0] == expected  # a "Text:" in the instruction is not context
    from remogpt.lm.model import _marker_at

    last_motion_marker = int(_marker_at(enc.input_ids[:1], model.config.motion_marker_ids)[0].nonzero().max())
    cut = tok(prompts[:1], return_tensors="pt", truncation=True, max_length=last_motion_marker + 2)
    assert (model.prompt_captions(cut.input_ids)[0, 1] == -1).all()  # cut off before its Motion: marker: left out
    dec = tok(["someone waves."], return_tensors="pt").input_ids
    with torch.no_grad():  # a fresh head has zero gates: plain logits
        with_head = model(input_ids=enc.input_ids[:1], labels=dec).logits
        model.caption_gate, plain = None, model(input_ids=enc.input_ids[:1], labels=dec).logits
    assert torch.allclose(with_head, plain)


def test_a_strong_bigram_gate_copies_the_retrieved_caption_where_a_word_repeats(vocab: MotionVocabulary):
    model = _caption_model(vocab)
    caption = "a person walks forward then someone walks."
    with torch.no_grad():
        model.caption_gate.bias.copy_(torch.tensor([0.0, 0.0, 40.0, 0.0]))  # bigram votes of the first caption only
    prompt = vocab.tokenizer([_caption_prompt(vocab, caption, "someone waves.")], return_tensors="pt")
    out = model.generate_from_ids(prompt.input_ids, prompt.attention_mask, do_sample=False, max_new_tokens=24,
                                  use_cache=True)[0].tolist()  # fmt: skip
    assert vocab.decode_text(out) == caption  # "walks" is followed by "for" and by ".": the bigram decides
    beams = model.generate_from_ids(prompt.input_ids, prompt.attention_mask, do_sample=False, max_new_tokens=24,
                                    num_beams=3, use_cache=True)[0].tolist()  # fmt: skip
    assert vocab.decode_text(beams) == caption
    target = vocab.tokenizer([caption], return_tensors="pt").input_ids
    with torch.no_grad():  # training: the loss is on the biased logits, near zero for the copied caption
        loss = model(input_ids=prompt.input_ids, attention_mask=prompt.attention_mask, labels=target).loss
    assert float(loss) < 0.05


def test_the_caption_head_gives_the_same_captions_with_and_without_the_generation_cache(vocab: MotionVocabulary):
    model = _caption_model(vocab)
    with torch.no_grad():  # gates that vary with the decoder state, so every position's votes matter
        torch.nn.init.normal_(model.caption_gate.weight, std=3.0)
        model.caption_gate.bias.copy_(torch.tensor([2.0, 1.0, 4.0, 2.0]))
    prompt = vocab.tokenizer([_caption_prompt(vocab, "a person walks forward then a person waves.", "someone waves.")],
                             return_tensors="pt")  # fmt: skip
    cached = model.generate_from_ids(prompt.input_ids, prompt.attention_mask, do_sample=False, max_new_tokens=16,
                                     use_cache=True)[0].tolist()  # fmt: skip
    assert _greedy_without_cache(model, prompt, lambda ids, logits: logits, vocab.pad_id, len(cached)) == cached


def test_a_saved_model_keeps_both_copy_heads(vocab: MotionVocabulary, tmp_path):
    from remogpt.lm.model import load_t5

    model = _caption_model(vocab)
    with torch.no_grad():
        model.copy_gate.bias.fill_(1.5)
        model.caption_gate.bias.fill_(0.7)
    model.save_pretrained(str(tmp_path / "lm"))
    again = load_t5(tmp_path / "lm")
    assert again.copy_gate is not None and torch.equal(again.copy_gate.bias, model.copy_gate.bias)
    assert again.caption_gate is not None and torch.equal(again.caption_gate.bias, model.caption_gate.bias)
    assert again.config.eom_token_id == vocab.eom_id
    for name in ("text_marker_ids", "motion_marker_ids", "context_marker_ids"):
        assert getattr(again.config, name) == getattr(model.config, name)
