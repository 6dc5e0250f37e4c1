"""The matching evaluator: reference module layout, official checkpoint loading, training that learns."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from remogpt.artifacts import ArtifactError
from remogpt.eval import r_precision
from remogpt.eval.evaluator import (
    POS_ENUMERATOR,
    Evaluator,
    EvaluatorConfig,
    EvaluatorError,
    WordVectorizer,
    tag_caption,
)
from remogpt.eval.train_evaluator import contrastive_hinge, train_evaluator
from remogpt.training import TrainerConfig

TINY = EvaluatorConfig(dim_word=16, dim_movement_enc_hidden=32, dim_movement_latent=32, dim_motion_hidden=32,
                       dim_text_hidden=32, dim_coemb_hidden=16)  # fmt: skip


def official_state_dict_shapes() -> dict[str, dict[str, tuple[int, ...]]]:
    """Parameter shapes of the official HumanML3D evaluator (dims 300/512/512/1024/512, 259 inputs)."""
    return {
        "movement_encoder": {"main.0.weight": (512, 259, 4), "main.0.bias": (512,), "main.3.weight": (512, 512, 4),
                             "main.3.bias": (512,), "out_net.weight": (512, 512), "out_net.bias": (512,)},
        "motion_encoder": {"input_emb.weight": (1024, 512), "input_emb.bias": (1024,),
                           "gru.weight_ih_l0": (3072, 1024), "gru.weight_hh_l0": (3072, 1024),
                           "gru.bias_ih_l0": (3072,), "gru.bias_hh_l0": (3072,),
                           "gru.weight_ih_l0_reverse": (3072, 1024), "gru.weight_hh_l0_reverse": (3072, 1024),
                           "gru.bias_ih_l0_reverse": (3072,), "gru.bias_hh_l0_reverse": (3072,),
                           "output_net.0.weight": (1024, 2048), "output_net.0.bias": (1024,),
                           "output_net.1.weight": (1024,), "output_net.1.bias": (1024,),
                           "output_net.3.weight": (512, 1024), "output_net.3.bias": (512,), "hidden": (2, 1, 1024)},
        "text_encoder": {"pos_emb.weight": (300, 15), "pos_emb.bias": (300,), "input_emb.weight": (512, 300),
                         "input_emb.bias": (512,), "gru.weight_ih_l0": (1536, 512), "gru.weight_hh_l0": (1536, 512),
                         "gru.bias_ih_l0": (1536,), "gru.bias_hh_l0": (1536,),
                         "gru.weight_ih_l0_reverse": (1536, 512), "gru.weight_hh_l0_reverse": (1536, 512),
                         "gru.bias_ih_l0_reverse": (1536,), "gru.bias_hh_l0_reverse": (1536,),
                         "output_net.0.weight": (512, 1024), "output_net.0.bias": (512,),
                         "output_net.1.weight": (512,), "output_net.1.bias": (512,),
                         "output_net.3.weight": (512, 512), "output_net.3.bias": (512,), "hidden": (2, 1, 512)},
    }  # fmt: skip


def write_official(tmp_path: Path) -> dict[str, Path]:
    """A synthetic checkpoint with the official keys and shapes, GloVe files and evaluator stats."""
    g = torch.Generator().manual_seed(0)
    state = {name: {k: torch.randn(shape, generator=g) * 0.05 for k, shape in params.items()}
             for name, params in official_state_dict_shapes().items()}  # fmt: skip
    state.update({"epoch": 12, "it": 3400})
    torch.save(state, tmp_path / "finest.tar")
    words = ["unk", "sos", "eos", "a", "person", "walk", "forward", "left", "hand", "wave"]
    glove = tmp_path / "glove"
    glove.mkdir()
    np.save(glove / "our_vab_data.npy", np.random.default_rng(0).normal(size=(len(words), 300)).astype(np.float32))
    with (glove / "our_vab_words.pkl").open("wb") as fh:
        pickle.dump(words, fh)
    with (glove / "our_vab_idx.pkl").open("wb") as fh:
        pickle.dump({w: i for i, w in enumerate(words)}, fh)
    np.save(tmp_path / "mean.npy", np.zeros(263, np.float32))
    np.save(tmp_path / "std.npy", np.ones(263, np.float32))
    return {"checkpoint": tmp_path / "finest.tar", "glove_dir": glove, "mean": tmp_path / "mean.npy",
            "std": tmp_path / "std.npy"}  # fmt: skip


def test_official_checkpoint_loads_and_embeds(tmp_path: Path):
    paths = write_official(tmp_path)
    ev = Evaluator.from_official(**paths)
    shapes = official_state_dict_shapes()
    for name, params in shapes.items():
        own = getattr(ev, name).state_dict()
        assert {k: tuple(v.shape) for k, v in own.items()} == params
    motions = [np.random.default_rng(1).normal(size=(n, 263)).astype(np.float32) for n in (40, 63, 196)]
    emb = ev.embed_motions(motions)
    assert emb.shape == (3, 512) and np.isfinite(emb).all()
    # Batch composition does not matter (padding is masked by the packed GRU).
    assert np.allclose(ev.embed_motions(motions[1:2]), emb[1:2], atol=1e-5)
    texts = ev.embed_texts([["a/DET", "person/NOUN", "walk/VERB", "forward/ADV"], "a person waves the left hand"])
    assert texts.shape == (2, 512)


def test_glove_pickles_with_classes_are_refused(tmp_path: Path):
    paths = write_official(tmp_path)

    class Sneaky:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (print, ("this must never run",))

    with (paths["glove_dir"] / "our_vab_words.pkl").open("wb") as fh:
        pickle.dump([Sneaky()], fh)
    with pytest.raises(EvaluatorError, match=r"refusing to load builtins\.print"):
        Evaluator.from_official(**paths)


def test_official_checkpoint_errors(tmp_path: Path):
    paths = write_official(tmp_path)
    torch.save({"text_encoder": {}}, tmp_path / "bad.tar")
    with pytest.raises(EvaluatorError, match="missing"):
        Evaluator.from_official(tmp_path / "bad.tar", paths["glove_dir"], paths["mean"], paths["std"])
    with pytest.raises(EvaluatorError, match="not found"):
        Evaluator.from_official(tmp_path / "nope.tar", paths["glove_dir"], paths["mean"], paths["std"])


def test_word_vectorizer_follows_reference_rules():
    words = ["unk", "sos", "eos", "walk", "left", "person", "quickly"]
    vec = WordVectorizer(np.eye(len(words), dtype=np.float32), words)
    ids, pos, length = vec.encode(["person/NOUN", "walk/VERB", "left/ADJ", "zebra/NOUN", "quickly/ADV"])
    assert length == 7 and len(ids) == 22
    assert ids[0] == words.index("sos") and ids[6] == words.index("eos") and ids[7] == words.index("unk")
    assert pos[1] == POS_ENUMERATOR["NOUN"]
    assert pos[2] == POS_ENUMERATOR["Act_VIP"] and pos[3] == POS_ENUMERATOR["Loc_VIP"]
    assert ids[4] == words.index("unk") and pos[4] == POS_ENUMERATOR["OTHER"]  # unknown word
    assert pos[5] == POS_ENUMERATOR["Desc_VIP"]
    long_ids, _, long_len = vec.encode(["walk/VERB"] * 30)
    assert long_len == 22 and len(long_ids) == 22  # 20 tokens kept + sos/eos
    assert tag_caption("A person waves the left hand.")[:3] == ["a/DET", "person/NOUN", "wave/VERB"]


def test_contrastive_hinge_by_hand():
    a = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    b = torch.tensor([[3.0, 4.0], [1.0, 0.0]])  # distances 5 and 0
    assert contrastive_hinge(a, b, negative=False, margin=10).item() == pytest.approx((25 + 0) / 2, rel=1e-5)
    assert contrastive_hinge(a, b, negative=True, margin=10).item() == pytest.approx((25 + 100) / 2, rel=1e-5)


def test_training_learns_and_round_trips(embedded_small: Path, tmp_path: Path):
    from remogpt.data import load_split

    tcfg = TrainerConfig(max_steps=200, batch_size=32, accelerator="cpu", devices="1", progress_bar=False,
                         checkpoint_every_n_steps=100)  # fmt: skip
    model = train_evaluator(embedded_small, tmp_path / "ev", TINY.replace(lr=2e-3), tcfg)
    train = load_split(embedded_small, "train")
    m = model.embed_motions([c.features for c in train])
    t = model.embed_texts([c.captions[0].tokens for c in train])
    top = r_precision(t, m, top_k=3)
    assert top[2] > 2 * (3 / 32)  # well above chance (3 of 32) after a short training
    again = Evaluator.from_pretrained(tmp_path / "ev")
    assert np.allclose(again.embed_motions([c.features for c in train[:5]]), m[:5], atol=1e-5)
    assert np.allclose(again.embed_texts([c.captions[0].tokens for c in train[:5]]), t[:5], atol=1e-5)
    with pytest.raises(EvaluatorError, match=r"expected \(T, 263\)"):
        again.embed_motions([np.zeros((40, 251), np.float32)])
    with pytest.raises(EvaluatorError, match="at least 4"):
        again.embed_motions([np.zeros((3, 263), np.float32)])
    # A byte flipped in the weights is refused at load, naming the file (the manifest holds their hash).
    weights = tmp_path / "ev" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="damaged") as info:
        Evaluator.from_pretrained(tmp_path / "ev")
    assert str(weights) in str(info.value)
