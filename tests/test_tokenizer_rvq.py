"""Residual quantisation (num_quantizers > 1): each layer codes what the ones before left, the base
layer alone still decodes a motion, batches match single motions, and one-layer tokenizers are unchanged."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from remogpt.artifacts import fingerprint_config
from remogpt.tokenizer import MotionTokenizer, TokenizerConfig, TokenizerError, reconstruction_metrics, train_tokenizer
from remogpt.tokenizer.model import VQVAE
from remogpt.tokenizer.train import load_clips
from test_tokenizer_training import cli, micro_config

pytestmark = pytest.mark.usefixtures("one_thread")

_RVQ = {"width": 32, "code_dim": 16, "codebook_size": 64, "depth": 2, "num_quantizers": 3, "quantizer_dropout": 0.2}


@pytest.fixture(scope="module")
def rvq(embedded_small: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("rvq") / "run"
    train_tokenizer(micro_config(embedded_small, 150, model=_RVQ), out)
    return out


def _held_out(root: Path) -> list[np.ndarray]:
    _, clips = load_clips(root, "test")
    return [c[: len(c) - len(c) % 4] for c in clips]


def test_each_residual_layer_brings_the_reconstruction_closer(rvq: Path, embedded_small: Path):
    tok = MotionTokenizer.from_pretrained(rvq)
    assert tok.num_quantizers == 3
    clips = _held_out(embedded_small)
    mean_pose = [np.broadcast_to(tok.normalizer.mean, c.shape).copy() for c in clips]
    baseline = reconstruction_metrics(clips, mean_pose, tok.normalizer)["feature_mae"]
    latent_error, mae = [], []
    torch.set_grad_enabled(False)
    for layers in (1, 2, 3):
        recon = [tok.reconstruct(c, layers=layers).numpy() for c in clips]
        mae.append(reconstruction_metrics(clips, recon, tok.normalizer)["feature_mae"])
        z = [tok.vqvae.encode_latent(tok._normalize(torch.as_tensor(c), False)[None])[0] for c in clips]
        codes = [tok.encode(c, layers=layers) for c in clips]
        latent_error.append(float(np.mean([float((tok.vqvae.lookup(k[None])[0] - zi).norm(dim=-1).mean())
                                           for k, zi in zip(codes, z, strict=True)])))  # fmt: skip
    torch.set_grad_enabled(True)
    assert latent_error[0] > latent_error[1] > latent_error[2], latent_error  # each layer codes what was left
    # Every prefix decodes a motion, the base alone included. (Whether the decoded features gain from the
    # residual layers depends on how much of the error is the codebook's: benchmarks/tokenizer_variants.py.)
    assert max(mae) < 0.8 * baseline, (mae, baseline)


def test_layered_codes_extend_the_base_codes_and_batches_match_single_motions(rvq: Path, embedded_small: Path):
    tok = MotionTokenizer.from_pretrained(rvq)
    clips = _held_out(embedded_small)[:3]
    base = [tok.encode(c) for c in clips]
    layered = [tok.encode(c, layers=3) for c in clips]
    for b, lay, c in zip(base, layered, clips, strict=True):
        assert b.shape == (len(c) // 4,) and lay.shape == (len(c) // 4, 3)
        assert torch.equal(lay[:, 0], b)
        assert int(lay.min()) >= 0 and int(lay.max()) < 64
        assert torch.allclose(tok.decode(lay[:, :1]), tok.decode(b))  # one layer given = the base codes
    codes, lengths = tok.encode_batch(clips, layers=3)
    assert codes.shape[-1] == 3 and lengths.tolist() == [len(c) // 4 for c in clips]
    out, frames = tok.decode_batch(codes)
    for i, lay in enumerate(layered):
        assert torch.equal(codes[i, : len(lay)], lay) and bool((codes[i, len(lay) :] == -1).all())
        assert torch.allclose(out[i, : frames[i]], tok.decode(lay), atol=1e-5)


def test_bad_layers_are_one_line_errors(rvq: Path):
    tok = MotionTokenizer.from_pretrained(rvq)
    motion = np.zeros((16, 263), np.float32)
    with pytest.raises(TokenizerError, match=r"layers: 4; this tokenizer has 3 code layer\(s\)"):
        tok.encode(motion, layers=4)
    with pytest.raises(TokenizerError, match="codes: 5 code layers; this tokenizer has 3"):
        tok.decode(torch.zeros(4, 5, dtype=torch.long))


def test_the_saved_rvq_tokenizer_keeps_its_fingerprint_and_one_layer_configs_keep_theirs(rvq: Path, tmp_path: Path):
    tok = MotionTokenizer.from_pretrained(rvq)
    tok.save_pretrained(tmp_path / "copy")
    assert MotionTokenizer.from_pretrained(tmp_path / "copy").fingerprint == tok.fingerprint
    one = fingerprint_config("tokenizer", TokenizerConfig().to_dict())
    assert "num_quantizers" not in one and "quantizer_dropout" not in one  # older artifacts' fingerprints hold
    assert fingerprint_config("tokenizer", TokenizerConfig(num_quantizers=2).to_dict())["num_quantizers"] == 2
    assert not any(k.startswith("residual_quantizers") for k in VQVAE(TokenizerConfig()).state_dict())


def test_quantizer_dropout_gives_each_sample_a_prefix_of_the_layers_only_while_training():
    torch.manual_seed(0)
    cfg = TokenizerConfig(width=16, code_dim=8, codebook_size=16, depth=1, num_quantizers=3, quantizer_dropout=1.0)
    model = VQVAE(cfg).train()
    model(torch.randn(64, 16, 263))  # initialise every codebook from a batch of 256 rows
    z = model.encode_latent(torch.randn(64, 16, 263)).detach()
    before = copy.deepcopy(model)  # the training call below moves the codebooks after assigning
    quantized, _, codes, _ = model._quantize_residual(z)
    prefixes = torch.stack([before.lookup(codes[..., :n]) for n in (1, 2, 3)])  # (3, B, L, C)
    error = (prefixes - quantized[None]).abs().amax(dim=(2, 3))  # (3, B)
    assert bool((error.min(0).values < 1e-5).all())  # every sample decodes from a prefix of its layers
    drawn = error.argmin(0)
    assert set(drawn.tolist()) == {0, 1, 2}  # dropout 1: each sample draws 1, 2 or 3 layers
    model.eval()
    quantized, _, codes, _ = model._quantize_residual(z)
    assert torch.allclose(quantized, model.lookup(codes), atol=1e-5)  # all layers outside training


def test_ddp_two_processes_train_an_rvq_tokenizer(embedded_small: Path, tmp_path: Path):
    """Every layer's EMA update runs on every rank whatever the dropout drew, so DDP cannot hang."""
    config = tmp_path / "rvq.yaml"
    micro_config(embedded_small, 3, model={**_RVQ, "quantizer_dropout": 0.5}).to_yaml(config)
    out = tmp_path / "ddp"
    run = cli("train", "tokenizer", "--config", str(config), "--out", str(out), "--accelerator", "cpu",
              "--devices", "2", "--strategy", "ddp", "--max-steps", "3")  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads((out / "tokenizer" / "manifest.json").read_text())["extra"]["world_size"] == 2
    assert MotionTokenizer.from_pretrained(out).encode(np.zeros((8, 263), np.float32), layers=3).shape == (2, 3)
