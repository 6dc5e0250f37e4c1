"""The language model on a residual tokenizer: its tokens are the base layer's codes and a head on its
decoder state writes the later layers; the training labels line up with the motion tokens, the head
learns (beats each layer's most common code), and generated motions decode through every layer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from factory import MICRO_LM, micro_tokenizer_config
from remogpt.lm import MotionVocabulary, PromptBuilder, ReMoGPT, train_lm
from remogpt.lm.config import RetrievalPromptConfig
from remogpt.lm.data import LMDataset, RetrievalTable, lm_collate, samples_from_split
from remogpt.tokenizer import MotionTokenizer, load_codes

pytestmark = pytest.mark.usefixtures("one_thread")

LAYERS = 3


@pytest.fixture(scope="module")
def rvq_run(embedded_small: Path, micro_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The micro run's retriever with a 3-layer residual tokenizer, and an LM trained on its codes."""
    from remogpt.tokenizer import train_tokenizer

    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("rvq_lm") / "run"
    cfg = micro_tokenizer_config(embedded_small, 150)
    cfg = cfg.replace(model={"num_quantizers": LAYERS, "quantizer_dropout": 0.2})
    train_tokenizer(cfg, run)
    shutil.copytree(micro_run / "retriever", run / "retriever")
    train_lm(MICRO_LM.replace(data={"root": str(embedded_small)}, stage1_steps=80, stage2_steps=80), run)
    return run


def test_residual_labels_follow_the_motion_tokens_and_a_cut_target():
    vocab = MotionVocabulary.build(["a person walks."] * 5, PromptBuilder.from_file().all_texts(), codebook_size=16,
                                   text_vocab_size=300)  # fmt: skip
    codes = np.array([3, 0, 15, 7])
    residual = np.array([[1, 2], [3, 4], [5, 6], [7, 8]])
    batch = [("p one", vocab.motion_string(codes), residual), ("p two", "a caption", None)]
    out = lm_collate(vocab, 64, 64, residual_layers=2)(batch)
    labels, res = out["labels"], out["residual_labels"]
    assert res.shape == (*labels.shape, 2)
    is_code = (labels >= vocab.motion_offset) & (labels < vocab.motion_offset + 16)
    assert torch.equal(labels[0][is_code[0]] - vocab.motion_offset, torch.as_tensor(codes))
    assert torch.equal(res[0][is_code[0]], torch.as_tensor(residual))
    assert bool((res[0][~is_code[0]] == -100).all()) and bool((res[1] == -100).all())
    cut = lm_collate(vocab, 64, 4, residual_layers=2)(batch[:1])  # <som>, the first two codes, </s>
    kept = cut["residual_labels"][0]
    assert kept[1:3].tolist() == residual[:2].tolist() and bool((kept[[0, 3]] == -100).all())
    assert "residual_labels" not in lm_collate(vocab, 64, 64)([b[:2] for b in batch])  # one-layer tokenizers
    with pytest.raises(ValueError, match=r"expected \(n, 2\)"):
        lm_collate(vocab, 64, 64, residual_layers=2)([("p", vocab.motion_string(codes), residual[:, :1])])


def test_the_lm_learns_the_residual_layers(rvq_run: Path, embedded_small: Path):
    manifest = json.loads((rvq_run / "lm" / "manifest.json").read_text())
    assert manifest["config"]["residual_layers"] == LAYERS - 1
    layered = load_codes(rvq_run / "codes", all_layers=True)
    assert all(c.ndim == 2 and c.shape[1] == LAYERS for c in layered.values())
    base = load_codes(rvq_run / "codes")
    assert all(np.array_equal(base[k], layered[k][:, 0]) for k in base)  # the prompts' codes: the base layer
    model = ReMoGPT.from_pretrained(rvq_run, data_root=embedded_small)
    samples, _ = samples_from_split(embedded_small, "train", layered)
    assert samples[0].residual is not None and samples[0].residual.shape == (len(samples[0].codes), LAYERS - 1)
    table = json.loads((rvq_run / "lm" / "retrievals.json").read_text())
    items = LMDataset(samples, base, model.vocab, PromptBuilder.from_file(), RetrievalPromptConfig("both", 1),
                      RetrievalTable(table["key"], table["entries"]), tasks=("t2m",))  # fmt: skip
    assert items.residual_layers == LAYERS - 1 and len(items[0]) == 3
    batch = lm_collate(model.vocab, 512, 64, LAYERS - 1)([items[i] for i in range(48)])
    t5 = model.model
    with torch.no_grad():
        t5(**batch)
        truth = batch["residual_labels"]
        logits = t5.residual_head(t5._decoder_state, t5.shared(batch["labels"].clamp(min=0)), truth)
    keep = truth[..., 0] >= 0
    for layer in range(LAYERS - 1):
        true = truth[..., layer][keep]
        accuracy = float((logits[..., layer, :].argmax(-1)[keep] == true).float().mean())
        majority = float(torch.bincount(true).max()) / len(true)
        assert accuracy > majority + 0.05, (layer, accuracy, majority)  # teacher-forced, training items


def test_generated_motions_decode_through_every_layer(rvq_run: Path, embedded_small: Path, tmp_path: Path):
    model = ReMoGPT.from_pretrained(rvq_run, data_root=embedded_small)
    tokenizer = MotionTokenizer.from_pretrained(rvq_run / "tokenizer")
    out = model.generate_motion(["a person walks forward.", "someone jumps twice."], num_samples=2, seed=3)
    for g in out:
        assert g.residual_codes is not None and g.residual_codes.shape == (len(g.codes), LAYERS - 1)
        assert g.residual_codes.min() >= 0 and g.residual_codes.max() < tokenizer.codebook_size
        layered = torch.as_tensor(np.column_stack([g.codes, g.residual_codes]))
        assert np.allclose(g.features, tokenizer.decode(layered).numpy(), atol=1e-5)
        assert not np.allclose(g.features, tokenizer.decode(torch.as_tensor(g.codes)).numpy(), atol=1e-3)
    again = ReMoGPT.from_pretrained(model.save_pretrained(tmp_path / "copy"), data_root=embedded_small)
    repeat = again.generate_motion(["a person walks forward.", "someone jumps twice."], num_samples=2, seed=3)
    for a, b in zip(out, repeat, strict=True):  # the head is saved with the model and decodes the same
        assert np.array_equal(a.codes, b.codes) and np.array_equal(a.residual_codes, b.residual_codes)
