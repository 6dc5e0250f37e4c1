"""The VQ-VAE tokenizer as a library: shapes, the EMA codebook by hand, padding, artifacts, bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from factory import random_motion
from remogpt.artifacts import ArtifactError
from remogpt.config import ConfigError
from remogpt.data import Normalizer
from remogpt.motion import process_joints
from remogpt.motion.features import features_to_joints
from remogpt.tokenizer import (
    PAD_CODE,
    MotionTokenizer,
    TokenizerConfig,
    TokenizerError,
    TokenizerTrainConfig,
)
from remogpt.tokenizer.metrics import codebook_stats, mpjpe, reconstruction_metrics
from remogpt.tokenizer.model import VQVAE, EMACodebook, tokenizer_loss

MICRO = TokenizerConfig(codebook_size=32, code_dim=8, width=16, depth=2)


pytestmark = pytest.mark.usefixtures("one_thread")


def stats(dim: int = 263, seed: int = 0) -> Normalizer:
    rng = np.random.default_rng(seed)
    return Normalizer(rng.normal(0, 0.1, dim).astype(np.float32), rng.uniform(0.5, 2.0, dim).astype(np.float32))


def ready_tokenizer(cfg: TokenizerConfig = MICRO, seed: int = 0) -> MotionTokenizer:
    """A tokenizer with random weights and a codebook initialised from random encoder outputs."""
    torch.manual_seed(seed)
    tok = MotionTokenizer(cfg, stats(cfg.feature_dim))
    tok.train()
    with torch.no_grad():
        tok.vqvae(torch.randn(4, 32, cfg.feature_dim))  # first training pass initialises the codebook
    return tok.eval()


def real_features(frames: int, seed: int) -> np.ndarray:
    return process_joints(random_motion(frames + 1, seed))[0].astype(np.float32)


# ------------------------------------------------------------------------------------------ config
def test_presets_hold_the_paper_values():
    paper = TokenizerTrainConfig.preset("paper")
    assert (paper.model.codebook_size, paper.model.code_dim, paper.model.width, paper.model.depth) == (512, 512, 512, 3)
    assert paper.model.downsample == 4 and paper.model.dilation_growth_rate == 3 and paper.model.ema_decay == 0.99
    assert (paper.window, paper.trainer.batch_size, paper.lr, tuple(paper.betas)) == (64, 256, 2e-4, (0.9, 0.99))
    assert (paper.model.commit_weight, paper.model.joint_weight) == (0.02, 0.5)
    assert (paper.model.heading_weight, paper.model.aligned_joint_weight) == (0.0, 0.0)  # T2M-GPT's loss
    tiny = TokenizerTrainConfig.preset("tiny")
    assert tiny.model.codebook_size == 512 and tiny.model.code_dim < 512 and tiny.model.width < 512
    assert TokenizerTrainConfig.from_dict(paper.to_dict()) == paper
    motion_terms = [getattr(paper.model, name) for name in TokenizerConfig.MOTION_TERMS]
    assert motion_terms == [0.0] * len(TokenizerConfig.MOTION_TERMS)  # T2M-GPT's loss, every new term off
    assert [getattr(tiny.model, name) for name in TokenizerConfig.MOTION_TERMS] == motion_terms
    detail = TokenizerTrainConfig.preset("tiny_detail")
    assert detail.model.replace(**dict.fromkeys(TokenizerConfig.MOTION_TERMS, 0.0)) == tiny.model  # only the terms
    assert (detail.model.extremity_weight, detail.model.foot_height_weight, detail.model.contact_weight) == (2, 4, 0)
    rvq = TokenizerTrainConfig.preset("tiny_rvq")  # tiny_detail with 4 residual layers (the ends_rvq variant)
    assert rvq.model.replace(num_quantizers=1, quantizer_dropout=0.0) == detail.model
    assert (rvq.model.num_quantizers, rvq.model.quantizer_dropout) == (4, 0.2)
    from remogpt.demo import DemoConfig

    assert DemoConfig().tokenizer_preset == "tiny"
    with pytest.raises(ConfigError, match="tokenizer_preset"):
        DemoConfig(tokenizer_preset="paper")
    # warm-up then step decay, as T2M-GPT: torch's schedulers against the closed form, step by step
    cfg = TokenizerTrainConfig(warmup_steps=20, lr_milestones=(50, 80), lr_gamma=0.1)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    schedule = cfg.lr_schedule(opt)
    for step in range(100):
        expected = min(1.0, (step + 1) / 21) * 0.1 ** ((step >= 50) + (step >= 80))
        assert opt.param_groups[0]["lr"] == pytest.approx(cfg.lr * expected, rel=1e-12), step
        opt.step()
        schedule.step()
    no_warmup = TokenizerTrainConfig(warmup_steps=0)
    assert no_warmup.lr_schedule(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)).get_last_lr() == [1.0]
    with pytest.raises(ConfigError, match="window"):
        TokenizerTrainConfig(window=30)
    with pytest.raises(ConfigError, match="ema_decay"):
        TokenizerConfig(ema_decay=1.0)
    with pytest.raises(ConfigError, match=r"unknown field model\.codebok_size"):
        TokenizerTrainConfig.from_dict({"model": {"codebok_size": 3}})


# --------------------------------------------------------------------------------------- the model
def test_encoder_decoder_shapes_and_dilations():
    model = VQVAE(TokenizerConfig(width=16, code_dim=8, codebook_size=16))
    dilations = [b.conv1.dilation[0] for b in model.encoder.res[0].blocks]
    assert dilations == [9, 3, 1]
    assert [c.stride[0] for c in model.encoder.down] == [2, 2]
    model.train()
    out = model(torch.randn(3, 64, 263))
    assert out.reconstruction.shape == (3, 64, 263) and out.codes.shape == (3, 16)
    assert int(out.codes.min()) >= 0 and int(out.codes.max()) < 16


def test_ema_update_and_dead_code_reset_by_hand():
    q = EMACodebook(codebook_size=3, code_dim=2, decay=0.5, dead_code_threshold=1.0)
    with torch.no_grad():
        q.codebook.copy_(torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]]))
        q.code_count.copy_(torch.tensor([2.0, 2.0, 1.2]))
        q.code_sum.copy_(q.codebook * q.code_count[:, None])
        q.initialized.fill_(True)
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [9.0, 0.0], [11.0, 2.0]])
    q.train()
    out = q(x)
    assert out.codes.tolist() == [0, 0, 1, 1]
    # commitment against the codebook as it was when assigned: ((1,0),(0,1),(-1,0),(1,2)) → 8 / 8
    assert float(out.commit_loss) == pytest.approx(1.0)
    # code 0: sum 0.5·0 + 0.5·(1,1), count 0.5·2 + 0.5·2 → (0.25, 0.25)
    assert torch.allclose(q.code_sum[0], torch.tensor([0.5, 0.5])) and float(q.code_count[0]) == pytest.approx(2.0)
    assert torch.allclose(q.codebook[0], torch.tensor([0.25, 0.25]))
    # code 1: sum 0.5·(20,0) + 0.5·(20,2) = (20,1), count 2 → (10, 0.5)
    assert torch.allclose(q.codebook[1], torch.tensor([10.0, 0.5]))
    # code 2: count 0.5·1.2 = 0.6 < 1 → dead: reset to one of the batch's vectors, statistics restart there
    assert any(torch.equal(q.codebook[2], row) for row in x)
    assert float(q.code_count[2]) == 1.0 and torch.equal(q.code_sum[2], q.codebook[2])
    # perplexity of the batch histogram (2, 2, 0) is 2; two of three codes used
    assert float(out.perplexity) == pytest.approx(2.0, rel=1e-4) and float(out.usage) == pytest.approx(2 / 3)
    # straight-through: the gradient reaches the input unchanged
    xg = x.clone().requires_grad_(True)
    q.eval()
    q(xg).quantized.sum().backward()
    assert torch.equal(xg.grad, torch.ones_like(x))


def test_codebook_initialises_from_the_first_batch_and_eval_does_not_update():
    q = EMACodebook(codebook_size=4, code_dim=3)
    x = torch.randn(10, 3)
    q.eval()
    q(x)
    assert not bool(q.initialized) and torch.count_nonzero(q.codebook) == 0
    q.train()
    q(x)
    assert bool(q.initialized)
    for code in q.codebook:  # initial codes are encoder outputs (then one EMA step towards their members)
        assert torch.cdist(code[None], x).min() < 1.0
    before = q.codebook.clone()
    q.eval()
    q(torch.randn(10, 3) * 5)
    assert torch.equal(before, q.codebook)


def test_loss_is_smooth_l1_plus_half_joint_term_plus_commitment():
    cfg = TokenizerConfig(heading_weight=0.0, aligned_joint_weight=0.0)  # T2M-GPT's loss (the paper preset)
    rec, target = torch.randn(2, 8, 263), torch.randn(2, 8, 263)
    commit = torch.tensor(0.3)
    losses = tokenizer_loss(rec, target, commit, cfg)
    joint = F.smooth_l1_loss(rec[..., 4:67], target[..., 4:67])
    expected = F.smooth_l1_loss(rec, target) + 0.5 * joint + 0.02 * 0.3
    assert torch.allclose(losses["loss"], expected) and torch.allclose(losses["joint"], joint)


def test_heading_and_aligned_joint_terms_match_hand_computed_values():
    """The motion-level terms, checked on errors whose effect is known in closed form."""
    cfg = TokenizerConfig(heading_weight=2.0, aligned_joint_weight=3.0)
    target = torch.from_numpy(real_features(24, seed=3))[None]
    mean, std = target.mean(dim=1)[0], target.std(dim=1)[0] + 0.5
    norm = (target - mean) / std
    commit = torch.tensor(0.0)
    # A yaw-velocity error δ in every frame turns the body by t·δ before frame t: mean |yaw error| = δ·T/2.
    delta, frames = 0.01, target.shape[1]
    turned = target.clone()
    turned[..., 0] += delta
    losses = tokenizer_loss((turned - mean) / std, norm, commit, cfg, mean, std)
    assert losses["heading"].item() == pytest.approx(delta * frames / 2, rel=1e-4)
    # Moving one joint's root-relative position by d moves that joint alone by |d| in every frame.
    moved = target.clone()
    d = torch.tensor([0.03, -0.04, 0.0])  # |d| = 5 cm
    moved[..., 4 + 3 * 6 : 4 + 3 * 7] += d  # joint 7 (ric index 6)
    losses = tokenizer_loss((moved - mean) / std, norm, commit, cfg, mean, std)
    assert losses["heading"].item() == pytest.approx(0.0, abs=1e-6)
    assert losses["aligned_joint"].item() == pytest.approx(0.05 / 22, rel=1e-3)
    plain = tokenizer_loss(
        (moved - mean) / std, norm, commit, TokenizerConfig(heading_weight=0, aligned_joint_weight=0)
    )
    assert set(plain) == {"loss", "feature", "joint", "commit"}
    expected = plain["loss"] + 2.0 * losses["heading"] + 3.0 * losses["aligned_joint"]
    assert torch.allclose(losses["loss"], expected)
    with pytest.raises(ValueError, match="mean and std"):
        tokenizer_loss(norm, norm, commit, cfg)
    with pytest.raises(ConfigError, match="heading_weight"):
        TokenizerConfig(heading_weight=-1.0)


def test_extremity_and_foot_height_terms_match_hand_computed_values():
    """The wrist and foot terms, on errors whose effect is known in closed form (6 ends: 2 wrists, 4 foot joints)."""
    cfg = TokenizerConfig(extremity_weight=2.0, extremity_velocity_weight=3.0, foot_height_weight=4.0)
    target = torch.from_numpy(real_features(24, seed=3))[None]
    target[..., 0] = 0.0  # no turning: a joint's offset in the heading frame is the same vector in every frame
    mean, std = target.mean(dim=1)[0], target.std(dim=1)[0] + 0.5
    norm, commit = (target - mean) / std, torch.tensor(0.0)
    # Left ankle (joint 7) moved by a constant d: position error |d| on 1 of 6 ends, no velocity error,
    # and its height off by |d_y| on 1 of the 4 foot joints.
    moved = target.clone()
    moved[..., 4 + 3 * 6 : 4 + 3 * 7] += torch.tensor([0.03, -0.04, 0.0])
    losses = tokenizer_loss((moved - mean) / std, norm, commit, cfg, mean, std)
    assert losses["extremity"].item() == pytest.approx(0.05 / 6, rel=1e-3)
    assert losses["extremity_velocity"].item() == pytest.approx(0.0, abs=1e-4)
    assert losses["foot_height"].item() == pytest.approx(0.04 / 4, rel=1e-3)
    # Left wrist (joint 20) drifting by v per frame: velocity error |v| × 20 fps on 1 of 6 ends; no foot moves.
    drift = target.clone()
    v = torch.tensor([0.0, 0.006, 0.008])  # 1 cm per frame
    drift[..., 4 + 3 * 19 : 4 + 3 * 20] += torch.arange(24.0)[:, None] * v
    losses = tokenizer_loss((drift - mean) / std, norm, commit, cfg, mean, std)
    assert losses["extremity_velocity"].item() == pytest.approx(0.01 * 20 / 6, rel=1e-3)
    assert losses["foot_height"].item() == pytest.approx(0.0, abs=1e-6)
    plain = tokenizer_loss((drift - mean) / std, norm, commit, TokenizerConfig())
    expected = plain["loss"] + 2 * losses["extremity"] + 3 * losses["extremity_velocity"] + 4 * losses["foot_height"]
    assert torch.allclose(losses["loss"], expected)
    # Contacts: an independent computation of the weighted distance error over the 10 pairs of
    # wrists, toes and head (joints 20, 21, 10, 11, 15).
    touch = TokenizerConfig(contact_weight=1.0)
    same = tokenizer_loss(norm, norm, commit, touch, mean, std)
    assert same["contact"].item() == pytest.approx(0.0, abs=1e-7)
    contact = tokenizer_loss((drift - mean) / std, norm, commit, touch, mean, std)["contact"].item()
    jp, jt = features_to_joints(drift[0]).numpy(), features_to_joints(target[0]).numpy()
    parts = [20, 21, 10, 11, 15]
    num = den = 0.0
    for i, a in enumerate(parts):
        for b in parts[i + 1 :]:
            dt, dp = np.linalg.norm(jt[:, a] - jt[:, b], axis=-1), np.linalg.norm(jp[:, a] - jp[:, b], axis=-1)
            w = np.exp(-dt / 0.1)
            num, den = num + (w * np.abs(dp - dt)).sum(), den + w.sum()
    assert contact == pytest.approx(num / den, rel=1e-3) and contact > 0
    with pytest.raises(ValueError, match="extremity"):
        tokenizer_loss(norm, norm, commit, cfg)
    with pytest.raises(ConfigError, match="foot_height_weight"):
        TokenizerConfig(foot_height_weight=-0.1)


# ----------------------------------------------------------------------------------- the tokenizer
def test_encode_decode_lengths_and_batch_equals_single():
    tok = ready_tokenizer()
    clips = [real_features(n, seed=n) for n in (8, 44, 20)]
    codes = [tok.encode(c) for c in clips]
    assert [len(c) for c in codes] == [2, 11, 5]
    assert all(c.dtype == torch.long and int(c.min()) >= 0 and int(c.max()) < 32 for c in codes)
    decoded = [tok.decode(c) for c in codes]
    assert [tuple(d.shape) for d in decoded] == [(8, 263), (44, 263), (20, 263)]
    batch, lengths = tok.encode_batch(clips)
    assert lengths.tolist() == [2, 11, 5] and batch.shape == (3, 11)
    for row, single in zip(batch, codes, strict=True):  # padding does not leak into real frames
        assert torch.equal(row[: len(single)], single) and bool((row[len(single) :] == PAD_CODE).all())
    features, frames = tok.decode_batch(batch)
    assert frames.tolist() == [8, 44, 20]
    for row, single in zip(features, decoded, strict=True):
        assert torch.allclose(row[: len(single)], single, atol=1e-5)
        assert bool((row[len(single) :] == 0).all())


def test_save_and_from_pretrained_give_identical_outputs(tmp_path: Path):
    tok = ready_tokenizer()
    clip = real_features(40, seed=3)
    tok.save_pretrained(tmp_path / "run" / "tokenizer")
    assert {p.name for p in (tmp_path / "run" / "tokenizer").iterdir()} == {
        "manifest.json",
        "config.yaml",
        "model.safetensors",
    }
    again = MotionTokenizer.from_pretrained(tmp_path / "run")  # the run folder holding tokenizer/ works too
    assert again.config == tok.config and again.fingerprint == tok.fingerprint
    assert torch.equal(again.encode(clip), tok.encode(clip))
    assert torch.equal(again.decode(tok.encode(clip)), tok.decode(tok.encode(clip)))
    np.testing.assert_array_equal(again.normalizer.std, tok.normalizer.std)


def test_bad_features_are_clear_errors():
    tok = ready_tokenizer()
    good = real_features(16, seed=1)
    with pytest.raises(TokenizerError, match="3 frames; a motion needs at least 4"):
        tok.encode(good[:3])
    with pytest.raises(TokenizerError, match=r"14 frames is not a multiple of 4.*crop=True"):
        tok.encode(good[:14])
    assert len(tok.encode(good[:14], crop=True)) == 3
    nan = good.copy()
    nan[5, 7] = np.nan
    with pytest.raises(TokenizerError, match=r"1 NaN/inf values \(first at index \(5, 7\)\)"):
        tok.encode(nan)
    with pytest.raises(TokenizerError, match="251 dims, this tokenizer takes 263"):
        tok.encode(np.zeros((16, 251), np.float32))
    with pytest.raises(TokenizerError, match="expected shape"):
        tok.encode(good[None])
    with pytest.raises(TokenizerError, match=r"features\[1\]: 6 frames is not a multiple"):
        tok.encode_batch([good, good[:6]])


def test_bad_codes_are_clear_errors():
    tok = ready_tokenizer()
    with pytest.raises(TokenizerError, match=r"2 codes outside the codebook \[0, 32\) \(e.g. \[-3, 32\]\)"):
        tok.decode([1, 32, -3])
    with pytest.raises(TokenizerError, match="empty"):
        tok.decode([])
    with pytest.raises(TokenizerError, match="must be integers"):
        tok.decode(np.array([0.5, 1.0]))
    with pytest.raises(TokenizerError, match="outside the codebook"):
        tok.decode_batch(torch.tensor([[1, 2, 40], [3, PAD_CODE, PAD_CODE]]))
    with pytest.raises(TokenizerError, match="row 1 is empty"):
        tok.decode_batch(torch.tensor([[1, 2], [PAD_CODE, PAD_CODE]]))


def _rehash(folder: Path) -> None:
    """Record the weights now in `folder` in its manifest (as if they had been saved there)."""
    from remogpt.artifacts import read_manifest, sha256_file, write_manifest

    manifest = read_manifest(folder)
    manifest.extra["weights_sha256"] = sha256_file(folder / "model.safetensors")
    write_manifest(folder, manifest)


def test_artifact_from_another_codebook_or_feature_dim_is_refused(tmp_path: Path):
    small = ready_tokenizer(MICRO)
    big = ready_tokenizer(TokenizerConfig(codebook_size=64, code_dim=8, width=16, depth=2))
    small.save_pretrained(tmp_path / "small")
    big.save_pretrained(tmp_path / "big")
    with pytest.raises(TokenizerError, match="has 32 codes, a vocabulary of 512 was expected"):
        MotionTokenizer.from_pretrained(tmp_path / "small", codebook_size=512)
    with pytest.raises(TokenizerError, match="takes 263-d features, 251 were expected"):
        MotionTokenizer.from_pretrained(tmp_path / "small", feature_dim=251)
    shutil.copy(tmp_path / "small" / "model.safetensors", tmp_path / "big" / "model.safetensors")
    with pytest.raises(ArtifactError, match="damaged or replaced weights"):  # the manifest's hash says so first
        MotionTokenizer.from_pretrained(tmp_path / "big")
    _rehash(tmp_path / "big")  # an artifact consistent in itself, with weights of another shape
    with pytest.raises(TokenizerError, match=r"shape mismatch.*codebook \(32, 8\) vs \(64, 8\)"):
        MotionTokenizer.from_pretrained(tmp_path / "big")
    kit = ready_tokenizer(TokenizerConfig(feature_dim=251, codebook_size=32, code_dim=8, width=16, depth=2))
    kit.save_pretrained(tmp_path / "kit")
    shutil.copy(tmp_path / "kit" / "model.safetensors", tmp_path / "small" / "model.safetensors")
    _rehash(tmp_path / "small")
    with pytest.raises(TokenizerError, match="trained on 251-d features, config says 263"):
        MotionTokenizer.from_pretrained(tmp_path / "small")
    with pytest.raises(ArtifactError, match=r"no manifest\.json"):
        MotionTokenizer.from_pretrained(tmp_path)
    untrained = MotionTokenizer(MICRO, stats())
    untrained.save_pretrained(tmp_path / "untrained")
    with pytest.raises(ArtifactError, match="never trained"):
        MotionTokenizer.from_pretrained(tmp_path / "untrained")


# ------------------------------------------------------------------------------------------ metrics
def test_metrics_by_hand():
    a = np.zeros((2, 3, 3))
    b = a.copy()
    b[:, :, 0] += 0.01  # every joint 1 cm off: 10 mm globally, 0 after aligning the pelvis
    assert np.allclose(mpjpe(a, b), 0.01) and np.allclose(mpjpe(a, b, align_root=True), 0.0)
    s = codebook_stats([np.array([0, 0, 1]), np.array([1])], codebook_size=4)
    assert s["perplexity"] == pytest.approx(2.0) and s["usage"] == 0.5 and s["used"] == 2
    clip = real_features(24, seed=5)
    norm = stats()
    same = reconstruction_metrics([clip], [clip], norm)
    assert same["mpjpe_mm"] == 0 and same["feature_mae"] == 0 and same["frames"] == 24
    shifted = clip.copy()
    shifted[:, 5:67:3] += 0.01  # the 21 non-root joints 1 cm higher (ric y), the pelvis unchanged
    moved = reconstruction_metrics([clip], [shifted], norm)
    assert moved["mpjpe_aligned_mm"] == pytest.approx(10.0 * 21 / 22, 1e-3)
    assert moved["mpjpe_local_mm"] == pytest.approx(10.0 * 21 / 22, 1e-3)
    turned = clip.copy()
    turned[:, 0] += 0.01  # a heading drift: the body turns, the pose in its own frame stays the same
    drift = reconstruction_metrics([clip], [turned], norm)
    assert drift["mpjpe_aligned_mm"] > 10.0 and drift["mpjpe_local_mm"] == 0.0
