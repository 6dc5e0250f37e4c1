"""Continue, in-between, body-part edits and timelines (`remogpt.lm.editing`): what is kept is kept bit
for bit, the new frames are what the decoder wrote (recomputed here from the codes), seams are
blended as documented, and bad input is one line naming the value."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from remogpt.errors import RemogptError
from remogpt.lm import editing
from remogpt.lm.editing import TimelineEntry, parse_timeline, read_timeline_file
from remogpt.motion import HUMANML3D, features_to_joints, joint_dims_by_kind

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model(micro_run: Path):
    from remogpt.lm import ReMoGPT

    return ReMoGPT.from_pretrained(micro_run)


@pytest.fixture(scope="module")
def plain(model):
    """The micro model as one that learnt no continuation task (continue_rate 0, the paper's)."""
    import copy
    import dataclasses

    untrained = copy.copy(model)
    untrained.cfg = dataclasses.replace(model.cfg, continue_rate=0.0)
    return untrained


@pytest.fixture(scope="module")
def walk(model) -> np.ndarray:
    return model.generate_motion(["a person walks forward"], seed=0, num_codes=12)[0].features


def _pose(x: np.ndarray) -> np.ndarray:
    return x[..., :-4]  # everything but the foot contacts


# --------------------------------------------------------------------------- the decoder's prefix


def test_prefix_codes_are_continued_and_counted(model, walk) -> None:
    prefix = model.tokenizer.encode(torch.as_tensor(walk[:16])).numpy()
    out = model.generate_motion(["a person waves"], seed=3, prefix_codes=prefix, num_codes=9)[0]
    assert len(out.codes) == 9 and np.array_equal(out.codes[:4], prefix)
    assert out.features.shape == (9 * model.tokenizer.downsample, 263)
    again = model.generate_motion(["a person waves"], seed=3, prefix_codes=prefix, num_codes=9)[0]
    assert np.array_equal(again.codes, out.codes)  # seeded like any sample
    free = model.generate_motion(["a person waves"], seed=3, prefix_codes=prefix)[0]
    assert len(free.codes) > 4 and np.array_equal(free.codes[:4], prefix)


@pytest.mark.parametrize(
    ("prefix", "num_codes", "message"),
    [
        (np.array([1.5, 2.0]), None, "integer codes"),
        (np.array([0, 999_999]), None, "must lie in"),
        (np.arange(4), 4, "num_codes must be between 5"),
        (np.zeros(80, np.int64), None, "leaves no room"),
    ],
)
def test_bad_prefixes_are_refused_in_one_line(model, prefix, num_codes, message) -> None:
    with pytest.raises(RemogptError, match=message) as info:
        model.generate_motion(["a person waves"], prefix_codes=prefix, num_codes=num_codes)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------------------------- the seams


def test_a_join_carries_pose_and_velocity_on_then_eases_out() -> None:
    rng = np.random.default_rng(0)
    kept = np.cumsum(rng.normal(size=(12, 263)), axis=0).astype(np.float32)
    new = np.cumsum(rng.normal(size=(30, 263)), axis=0).astype(np.float32)
    kept[:, editing._height_dims(263)] = new[:, editing._height_dims(263)] = 1.0  # far from the floor: no lift
    out = editing.join(kept, new, 10)
    step = kept[-1] - kept[-2]
    np.testing.assert_allclose(_pose(out[0]), _pose(kept[-1] + step), atol=1e-4)  # where the kept motion heads
    np.testing.assert_allclose(_pose(out[1] - out[0]), _pose(step), atol=1e-4)  # and at its pace
    assert np.array_equal(out[10:], new[10:]) and np.array_equal(out[:, -4:], new[:, -4:])
    back = editing.join_end(new, kept, 10)  # the mirror: the new frames lead into the kept ones
    np.testing.assert_allclose(_pose(back[-1]), _pose(kept[0] + (kept[0] - kept[1])), atol=1e-4)
    assert np.array_equal(back[:-10], new[:-10])


def test_a_join_never_takes_the_feet_below_both_motions_it_joins() -> None:
    """Kept frames falling fast (the end of a jump) joined to a motion on the floor: carrying the fall
    on would push the body through the floor; the blended frames are lifted to the higher floor."""
    heights = editing._height_dims(263)
    kept = np.zeros((6, 263), np.float32)
    kept[:, heights] = np.linspace(0.5, 0.05, 6)[:, None]  # falling 9 cm a frame, lowest joint 5 cm up
    new = np.zeros((20, 263), np.float32)
    new[:, heights] = 0.0  # standing on the floor
    out = editing.join(kept, new, 10)
    ric_y = heights[1:]
    assert out[:, ric_y].min(axis=1).min() >= -1e-6
    step = kept[-1] - kept[-2]
    lifted = editing._hermite_offset(20, kept[-1] + step - new[0], step - (new[1] - new[0]), 10)
    assert lifted[:, ric_y].min() < -0.05  # without the lift it would have gone 5 cm or more below


# -------------------------------------------------------------------------------------- continue


def test_continuing_keeps_the_prefix_and_writes_what_the_decoder_wrote(plain, walk) -> None:
    model = plain
    result = model.continue_motion("a person waves with the right hand", walk, frames=30, seed=1)
    n, unit = len(walk), model.tokenizer.downsample
    assert result.features.shape == (n + 30, 263) and result.kept_frames == [(0, n)] and result.seams == [n]
    assert result.continued_by == "decoder prefix"
    assert np.array_equal(result.features[:n], walk)  # bit for bit
    assert np.array_equal(result.joints[:n], features_to_joints(walk))  # the joints too: recovery is causal
    # Independently: the context codes of the last 16 frames, then the new codes, decoded, joined.
    context = model.tokenizer.encode(torch.as_tensor(walk[n - 4 * unit :])).numpy()
    decoded = model.tokenizer.decode(torch.as_tensor(np.concatenate([context, result.codes]))).numpy()
    expected = editing.join(walk, decoded[4 * unit : 4 * unit + 30], editing.BLEND_FRAMES)
    np.testing.assert_allclose(result.features[n:], expected, atol=1e-5)


def test_a_model_trained_on_continuation_gets_its_task(model, plain, walk, monkeypatch) -> None:
    """With `continue_rate` > 0 (the micro run's, tiny's) the prompt is the continuation instruction
    (the last `continue_prompt_codes` codes of the motion so far, the text), each retrieved motion is
    shown from where the motion has reached, and the decoder starts from the overlap, as in
    training; a timeline's later segment is shown its retrieved motions from their start."""
    import copy

    from remogpt.lm.data import CONTINUATION_OVERLAP

    trained = copy.copy(model)
    assert trained.continuation_trained and not plain.continuation_trained
    assert trained.cfg.continue_prompt_codes == 12
    prompts: list[str] = []
    tokenize = trained._tokenize
    monkeypatch.setattr(trained, "_tokenize", lambda rows: prompts.extend(rows) or tokenize(rows))
    unit = model.tokenizer.downsample
    result = trained.continue_motion("a person waves with the right hand", walk, frames=20, seed=1)
    assert np.array_equal(result.features[: len(walk)], walk) and result.continued_by == "continuation task"
    so_far = model.tokenizer.encode(torch.as_tensor(walk[len(walk) - 12 * unit :])).numpy()
    instruction, context = prompts[0].split("\n### Context: ")
    text = "a person waves with the right hand"
    assert instruction == trained.prompts.continuation(model.vocab.motion_string(so_far), text).split("\n")[0]
    offset = len(walk) // unit - CONTINUATION_OVERLAP
    first_ref = result.references[0]["id"]
    shown = model.vocab.motion_string(model.database_codes(first_ref)[offset:][: model.retrieval.max_context_codes])
    assert context.split(" Text: ")[0].endswith(shown)
    # The new codes follow the overlap the decoder was handed: what it wrote, decoded and joined.
    decoded = model.tokenizer.decode(torch.as_tensor(np.concatenate([so_far[-4:], result.codes]))).numpy()
    np.testing.assert_allclose(result.features[len(walk) :],
                               editing.join(walk, decoded[4 * unit : 4 * unit + 20], editing.BLEND_FRAMES), atol=1e-5)
    # A timeline's later segment goes on by the decoder prefix (the default, editing.SEGMENTS_BY): its
    # prompt is text→motion's; asked for the task, it is the continuation instruction, and the new
    # caption's retrieved motions are shown from their start.
    entries = [("a person walks forward", 2.0), ("a person jumps", 1.0)]
    for how in (editing.PREFIX, editing.TASK):
        prompts.clear()
        line = trained.timeline(entries, seed=0, segments_by=how)
        assert line.continued_by == how
        instruction, later = prompts[-1].split("\n### Context: ")
        plain_prompt = trained.prompts.text_to_motion("a person jumps").split("\n")[0]
        assert (instruction == plain_prompt) == (how == editing.PREFIX)
        ref = line.segments[1]["references"][0]["id"]
        full = model.vocab.motion_string(model.database_codes(ref)[: model.retrieval.max_context_codes])
        assert later.split(" Text: ")[0].endswith(full)
    with pytest.raises(RemogptError, match=r"segments_by 'continuation task'.*not trained on continuation"):
        plain.timeline(entries, segments_by=editing.TASK)
    with pytest.raises(RemogptError, match="segments_by 'sideways'"):
        trained.timeline(entries, segments_by="sideways")


def test_a_continuation_longer_than_the_window_continues_itself(model, walk) -> None:
    window = model.cfg.max_motion_codes * model.tokenizer.downsample
    result = model.continue_motion("a person walks forward", walk, frames=window + 50)
    assert len(result.features) == len(walk) + window + 50
    assert np.array_equal(result.features[: len(walk)], walk)


# ------------------------------------------------------------------------------------ in-between


def test_inbetween_keeps_both_ends_and_meets_the_second(model, walk) -> None:
    end = model.generate_motion(["a person jumps"], seed=2, num_codes=8)[0].features
    result = model.inbetween(walk, end, frames=24, text="a person turns around")
    a, b = len(walk), len(walk) + 24
    assert result.features.shape == (b + len(end), 263) and result.seams == [a, b]
    assert result.kept_frames == [(0, a), (b, b + len(end))]
    assert np.array_equal(result.features[:a], walk) and np.array_equal(result.features[b:], end)
    middle = result.features[a:b]
    # Bent to lead into the end: its last frame is the one before the end's first, at the end's pace.
    np.testing.assert_allclose(_pose(middle[-1]), _pose(end[0] + (end[0] - end[1])), atol=1e-4)
    untext = model.inbetween(walk, end, frames=8)  # no text: the model's caption of the end motion
    assert untext.text and len(untext.features) == a + 8 + len(end)


def test_best_of_n_keeps_the_middle_that_arrives_nearest(model, walk) -> None:
    end = model.generate_motion(["a person jumps"], seed=2, num_codes=8)[0].features
    best = model.inbetween(walk, end, frames=16, text="a person turns around", seed=5, candidates=3)
    singles = [model.inbetween(walk, end, frames=16, text="a person turns around", seed=5 + n) for n in range(3)]
    assert any(np.array_equal(best.features, one.features) for one in singles)
    assert np.array_equal(best.features[: len(walk)], walk) and np.array_equal(best.features[-len(end) :], end)
    with pytest.raises(RemogptError, match="candidates must be a whole number in 1 … 64, got 0"):
        model.inbetween(walk, end, frames=16, candidates=0)


# ------------------------------------------------------------------------------------ part edits


def _dims(joints: list[int]) -> list[int]:
    return [d for j in joints for group in joint_dims_by_kind(j, 22) for d in group]


def test_an_arm_edit_keeps_root_legs_and_backbone_bit_for_bit(model, walk) -> None:
    result = model.edit_parts(walk, "a person waves with both hands", "arms", seed=4)
    assert result.features.shape == walk.shape and result.kept_parts == ["root", "right_leg", "left_leg", "backbone"]
    arms = [13, 14, 16, 17, 18, 19, 20, 21]
    kept = sorted(set(range(263)) - set(_dims(arms)))
    assert np.array_equal(result.features[:, kept], walk[:, kept])
    others = [j for j in range(22) if j not in arms]
    assert np.array_equal(result.joints[:, others], features_to_joints(walk)[:, others])
    # The arms are the new motion's, hanging from the kept Spine3: their offsets from it, in the root's
    # facing frame (ric), are the new motion's, and so are the arm bones' lengths in the world.
    new = model.generate_motion(["a person waves with both hands"], seed=4, num_codes=len(walk) // 4)[0].features
    new = new[: len(walk)]

    def ric(f: np.ndarray, j: int) -> np.ndarray:
        return f[:, joint_dims_by_kind(j, 22)[0]]

    for j in arms:
        np.testing.assert_allclose(ric(result.features, j) - ric(result.features, 9), ric(new, j) - ric(new, 9),
                                   atol=1e-5)  # fmt: skip
    new_joints, parents = features_to_joints(new), HUMANML3D.parents
    for j in arms:
        bone = np.linalg.norm(result.joints[:, j] - result.joints[:, parents[j]], axis=-1)
        np.testing.assert_allclose(bone, np.linalg.norm(new_joints[:, j] - new_joints[:, parents[j]], axis=-1),
                                   atol=1e-5)  # fmt: skip
    assert not np.allclose(result.features[:, _dims(arms)], walk[:, _dims(arms)])


def test_a_leg_edit_keeps_the_upper_body_relative_to_the_root(model, walk) -> None:
    result = model.edit_parts(walk, "a person jumps in place", "legs", seed=5)
    parts = HUMANML3D.parts
    upper = sorted(set(parts["backbone"]) | set(parts["right_arm"]) | set(parts["left_arm"]))
    rot = [d for j in upper for d in joint_dims_by_kind(j, 22)[1]]
    assert np.array_equal(result.features[:, rot], walk[:, rot])
    ric = np.array([joint_dims_by_kind(j, 22)[0] for j in upper])  # (J, 3)
    for axis in (0, 2):  # horizontal offsets from the root: kept
        assert np.array_equal(result.features[:, ric[:, axis]], walk[:, ric[:, axis]])
    height = result.features[:, ric[:, 1]] - result.features[:, [3]]  # above the root: kept within float error
    np.testing.assert_allclose(height, walk[:, ric[:, 1]] - walk[:, [3]], atol=1e-5)


def test_part_edits_refuse_what_they_cannot_do(model, walk) -> None:
    with pytest.raises(RemogptError, match="arms, legs"):
        model.edit_parts(walk, "waves", "head")
    long = np.concatenate([walk] * 5)
    with pytest.raises(RemogptError, match=r"has \d+ frames; a body-part edit works within"):
        model.edit_parts(long, "waves", "arms")
    with pytest.raises(RemogptError, match=r"expected features \(T, 263\), got shape \(48, 251\)"):
        model.edit_parts(np.zeros((48, 251), np.float32), "waves", "arms")


# -------------------------------------------------------------------------------------- timelines


def test_timeline_syntax() -> None:
    entries = parse_timeline("a person walks forward (4 s); then waves [2.5s]; and then, sits down")
    assert entries == [TimelineEntry("a person walks forward", 4.0), TimelineEntry("waves", 2.5),
                       TimelineEntry("sits down", None)]  # fmt: skip
    for bad, message in (("walks; ; waves", "entry 2 is empty"), ("walks (0 s)", "lasts 0 s"),
                         ("   ", "is empty"), ("walks (-2 s)", "lasts -2 s")):  # fmt: skip
        with pytest.raises(RemogptError, match=message):
            parse_timeline(bad)


def test_timeline_files(tmp_path: Path) -> None:
    good = tmp_path / "t.json"
    good.write_text(json.dumps([{"text": "walks", "seconds": 3}, "then waves (2 s)", {"text": "sits"}]))
    assert read_timeline_file(good) == [TimelineEntry("walks", 3.0), TimelineEntry("waves", 2.0),
                                        TimelineEntry("sits", None)]  # fmt: skip
    lines = tmp_path / "t.txt"
    lines.write_text("# a comment\nwalks (3 s)\n\nthen waves\n")
    assert read_timeline_file(lines) == [TimelineEntry("walks", 3.0), TimelineEntry("waves", None)]
    for name, body, message in (("a.json", "[{\"text\": \"x\", \"seconds\": \"4\"}]", "must be a number"),
                                ("b.json", "{", "not valid JSON"), ("c.json", "[]", "non-empty JSON list"),
                                ("d.json", "[{\"seconds\": 2}]", "entry 1 needs a \"text\""),
                                ("e.txt", "# nothing\n", "no entries")):  # fmt: skip
        (tmp_path / name).write_text(body)
        with pytest.raises(RemogptError, match=message):
            read_timeline_file(tmp_path / name)
    with pytest.raises(RemogptError, match="file not found"):
        read_timeline_file(tmp_path / "missing.json")


def test_a_sixty_second_timeline_is_one_continuous_motion_without_drift(model) -> None:
    entries = [TimelineEntry(t, 10.0) for t in ("a person walks forward", "a person waves", "a person jumps",
                                                 "a person turns around", "a person sits down", "a person walks")]
    result = model.timeline(entries, seed=0)
    assert result.features.shape == (1200, 263) and result.seams == [200, 400, 600, 800, 1000]
    assert [s["frames"] for s in result.segments] == [200] * 6 and all(s["references"] for s in result.segments)
    for seam in result.seams:  # each part continues the one before: only its own frames are new
        assert np.array_equal(result.features[:seam], model.timeline(entries[: seam // 200], seed=0).features)
        break  # one prefix recomputed is enough to show it (the others follow by induction)
    # Heights are the decoder's own in every part (features carry them absolutely, and a seam's offset
    # fades out in 10 frames), so the floor cannot drift: each 10 s touches the floor (y = 0, where the
    # training motions stand) within 5 cm, the last as well as the first.
    floors = result.joints[..., 1].min(axis=1).reshape(6, 200).min(axis=1)
    assert np.abs(floors).max() < 0.05, floors
    assert np.isfinite(result.joints).all()


# --------------------------------------------------------------------------------- the commands


def test_generate_from_continues_and_records_the_edit(run_cli, micro_run: Path, walk, tmp_path: Path) -> None:
    start = tmp_path / "walk.npy"
    np.save(start, walk)
    code, out, err = run_cli("generate", "a person waves", "--run", micro_run, "--from", start, "--frames", "20",
                             "--no-video", "--export", "bvh", "--out", tmp_path / "cont")  # fmt: skip
    assert code == 0, err
    report = json.loads((tmp_path / "cont" / "generation.json").read_text())
    assert report["mode"] == "continue" and report["samples"][0]["kept_frames"] == [[0, len(walk)]]
    assert np.array_equal(np.load(tmp_path / "cont" / "motion_0_features.npy")[: len(walk)], walk)
    assert (tmp_path / "cont" / "motion_0.bvh").is_file()
    code, out, err = run_cli("generate", "--run", micro_run, "--from", start, "--to", start, "--frames", "12",
                             "--no-video", "--out", tmp_path / "ib")  # fmt: skip
    assert code == 0, err
    assert json.loads((tmp_path / "ib" / "generation.json").read_text())["samples"][0]["seams"] == [48, 60]
    code, out, err = run_cli("generate", "a person waves", "--run", micro_run, "--from", start, "--edit", "arms",
                             "--no-video", "--out", tmp_path / "arms")  # fmt: skip
    assert code == 0, err
    assert "kept root, right_leg, left_leg, backbone" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--to", "X.npy", "--frames", "4"], "need --from MOTION"),
        (["--from", "START", "--frames", "0"], "--frames must be ≥ 1"),
        (["--from", "START", "--to", "START"], "--to needs --frames N"),
        (["--from", "START", "--edit", "head"], "--edit must be arms or legs"),
        (["--from", "START", "--edit", "arms", "--frames", "8"], "takes neither --to nor --frames"),
        (["--from", "missing.npy"], "missing.npy: file not found"),
        (["--from", "motion.txt"], "not a motion file"),
    ],
)
def test_generate_from_refuses_bad_input_in_one_line(run_cli, micro_run: Path, walk, tmp_path: Path, args,
                                                     message) -> None:  # fmt: skip
    np.save(tmp_path / "start.npy", walk)
    (tmp_path / "motion.txt").write_text("1 2 3")
    args = [str(tmp_path / "start.npy") if a == "START" else str(tmp_path / a) if a.endswith((".npy", ".txt"))
            else a for a in args]  # fmt: skip
    code, _, err = run_cli("generate", "a person waves", "--run", micro_run, *args, "--out", tmp_path / "o")
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_the_timeline_command(run_cli, micro_run: Path, tmp_path: Path) -> None:
    code, out, err = run_cli("timeline", "a person walks forward (3 s); then waves (2 s)", "--run", micro_run,
                             "--no-video", "--export", "bvh", "--out", tmp_path / "tl")  # fmt: skip
    assert code == 0, err
    assert "5.0 s, 2 parts, continued by the decoder prefix" in out
    assert np.load(tmp_path / "tl" / "motion_0_joints.npy").shape == (100, 22, 3)
    report = json.loads((tmp_path / "tl" / "generation.json").read_text())
    assert report["mode"] == "timeline" and [s["frames"] for s in report["samples"][0]["segments"]] == [60, 40]
    assert report["samples"][0]["continued_by"] == "decoder prefix"
    code, out, err = run_cli("timeline", "a person walks forward (3 s); then waves (2 s)", "--run", micro_run,
                             "--no-video", "--segments-by", "task", "--out", tmp_path / "task")  # fmt: skip
    assert code == 0 and "continued by the continuation task" in out, err
    code, out, err = run_cli("timeline", "a person walks (3 s)", "--run", micro_run, "--segments-by", "sideways",
                             "--out", tmp_path / "bad")  # fmt: skip
    assert code == 2 and "--segments-by must be prefix or task, got 'sideways'" in err
    code, out, err = run_cli("timeline", "walks; ; waves", "--run", micro_run, "--out", tmp_path / "bad")
    assert code == 2 and "entry 2 is empty" in err
