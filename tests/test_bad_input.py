"""Bad input and damaged files, as a careless or hostile user meets them (issue: one clear line each).

One table of command-line cases: the command, what is wrong with its input, the exit status, the
words the one error (or warning) line must hold, and the check that no file outside the command's
output changed. The good cases beside them stay good. Then ids that try to leave their folder,
weights damaged anywhere, and interrupted trainings.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from factory import CliResult, make_folder, micro_tokenizer_config, object_npy_bytes
from remogpt.artifacts import ArtifactError
from remogpt.data import DataFormatError, open_split

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def world(micro_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a copy of the micro run, a small data folder, bad files and a file to protect."""
    root = tmp_path_factory.mktemp("world")
    shutil.copytree(micro_run, root / "run", symlinks=True)
    make_folder(root / "data", n_train=4, n_test=2)
    (root / "victim.npy").write_bytes(b"precious")
    good = np.load(root / "data" / "new_joint_vecs" / "000000.npy")
    np.save(root / "good.npy", good)
    np.save(root / "huge.npy", np.full_like(good, 1e30))
    nan = good.copy()
    nan[3, 5] = np.nan
    np.save(root / "nan.npy", nan)
    np.save(root / "shape.npy", good[:, :7])
    (root / "text.npy").write_text("this is not numpy\n", encoding="utf-8")
    (root / "pickle.npy").write_bytes(b"\x80\x04not a real pickle.")  # what a pickle file starts with
    (root / "object.npy").write_bytes(object_npy_bytes())  # an object-array header, never a real pickle
    (root / "a_file").write_text("x", encoding="utf-8")
    (root / "a_folder").mkdir()
    (root / "busy").mkdir()
    (root / "busy" / "notes.txt").write_text("the user's own file", encoding="utf-8")
    return root


def _snapshot(root: Path, skip: tuple[Path, ...]) -> dict[str, tuple[int, int]]:
    """Every file and link under `root` (outside `skip`) with its size and modification time."""
    seen = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if not any((here / d) == s or s in (here / d).parents for s in skip)]
        for name in filenames:
            path = here / name
            if any(path == s or s in path.parents for s in skip):
                continue
            st = path.lstat()
            seen[str(path.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return seen


@dataclass
class Case:
    name: str
    args: list[str]  # "{w}" is the world folder
    code: int
    words: tuple[str, ...] = ()  # all must be in stderr (the error or warning line)
    out: tuple[str, ...] = ()  # paths (relative to the world) the command may write
    warning: bool = False
    extra: dict = field(default_factory=dict)


GEN = ["generate", "a person walks forward", "--run", "{w}/run", "--no-video"]
CASES = [
    # ------------------------------------------------------------ generate
    Case("generate: good", [*GEN, "--out", "{w}/gen_ok"], 0, out=("gen_ok",)),
    Case("generate: temperature 0", [*GEN, "--out", "{w}/g", "--temperature", "0"], 2, ("--temperature", "0")),
    Case("generate: temperature -1", [*GEN, "--out", "{w}/g", "--temperature", "-1"], 2, ("--temperature", "-1")),
    Case("generate: temperature nan", [*GEN, "--out", "{w}/g", "--temperature", "nan"], 2, ("--temperature", "nan")),
    Case("generate: top-k -5", [*GEN, "--out", "{w}/g", "--top-k", "-5"], 2, ("--top-k",)),
    Case("generate: 1000 samples", [*GEN, "--out", "{w}/g", "--num-samples", "1000"], 2, ("--num-samples", "64")),
    Case("generate: 0 samples", [*GEN, "--out", "{w}/g", "--num-samples", "0"], 2, ("--num-samples",)),
    Case("generate: --out is a file", [*GEN, "--out", "{w}/a_file"], 2, ("a_file", "not a folder")),
    Case("generate: --out under a file", [*GEN, "--out", "{w}/a_file/sub"], 2, ("a_file", "is a file")),
    Case("generate: --out holds other files", [*GEN, "--out", "{w}/busy"], 2, ("busy", "other files")),
    Case("generate: empty text", ["generate", "   ", "--run", "{w}/run", "--out", "{w}/g"], 2, ("empty",)),
    Case("generate: no run", [*GEN, "--out", "{w}/g", "--run", "{w}/nothing"], 2, ("nothing", "missing")),
    Case(
        "generate: emoji only",
        ["generate", "🙂🙂", "--run", "{w}/run", "--no-video", "--out", "{w}/gen_emoji"],
        0,
        ("no words",),
        out=("gen_emoji",),
        warning=True,
    ),
    Case(
        "generate: punctuation only",
        ["generate", "?!…", "--run", "{w}/run", "--no-video", "--out", "{w}/gen_p"],
        0,
        ("no words",),
        out=("gen_p",),
        warning=True,
    ),
    Case(
        "generate: capitals, another language",
        ["generate", "UNE PERSONNE SAUTE, PUIS S'ASSOIT!", "--run", "{w}/run", "--no-video", "--out", "{w}/gen_fr"],
        0,
        out=("gen_fr",),
    ),
    # ------------------------------------------------------------ caption
    Case("caption: good", ["caption", "{w}/good.npy", "--run", "{w}/run"], 0),
    Case("caption: beams 0", ["caption", "{w}/good.npy", "--run", "{w}/run", "--num-beams", "0"], 2, ("--num-beams",)),
    Case(
        "caption: beams -3", ["caption", "{w}/good.npy", "--run", "{w}/run", "--num-beams", "-3"], 2, ("--num-beams",)
    ),
    Case(
        "caption: text renamed .npy",
        ["caption", "{w}/text.npy", "--run", "{w}/run"],
        2,
        ("text.npy", "not a .npy file"),
    ),
    Case("caption: a pickle", ["caption", "{w}/pickle.npy", "--run", "{w}/run"], 2, ("pickle.npy", "pickled")),
    Case("caption: an object array", ["caption", "{w}/object.npy", "--run", "{w}/run"], 2, ("object.npy", "pickled")),
    Case("caption: values 1e30", ["caption", "{w}/huge.npy", "--run", "{w}/run"], 2, ("huge.npy", "1e+30")),
    Case("caption: NaN", ["caption", "{w}/nan.npy", "--run", "{w}/run"], 2, ("nan.npy", "NaN")),
    Case("caption: wrong shape", ["caption", "{w}/shape.npy", "--run", "{w}/run"], 2, ("shape.npy", "7 feature dims")),
    Case("caption: missing file", ["caption", "{w}/missing.npy", "--run", "{w}/run"], 2, ("missing.npy", "not found")),
    Case("caption: a folder", ["caption", "{w}/a_folder", "--run", "{w}/run"], 2, ("a_folder", "folder")),
    # ------------------------------------------------------------ retrieve
    Case(
        "retrieve: good, with --json",
        ["retrieve", "a person walks", "--run", "{w}/run", "--json", "{w}/r.json"],
        0,
        out=("r.json",),
    ),
    Case(
        "retrieve: --json is a folder",
        ["retrieve", "walk", "--run", "{w}/run", "--json", "{w}/a_folder"],
        2,
        ("--json", "a_folder", "is a folder"),
    ),
    Case(
        "retrieve: motion with NaN", ["retrieve", "--motion", "{w}/nan.npy", "--run", "{w}/run"], 2, ("nan.npy", "NaN")
    ),
    Case(
        "retrieve: motion of the wrong shape",
        ["retrieve", "--motion", "{w}/shape.npy", "--run", "{w}/run"],
        2,
        ("shape.npy", "7 feature dims"),
    ),
    Case(
        "retrieve: motion values 1e30",
        ["retrieve", "--motion", "{w}/huge.npy", "--run", "{w}/run"],
        2,
        ("huge.npy", "1e+30"),
    ),
    Case("retrieve: motion good", ["retrieve", "--motion", "{w}/good.npy", "--run", "{w}/run"], 0),
    Case("retrieve: k 0", ["retrieve", "walk", "-k", "0", "--run", "{w}/run"], 2, ("--k",)),
    Case("retrieve: emoji query", ["retrieve", "🙂", "--run", "{w}/run"], 0, ("no words",), warning=True),
    Case(
        "retrieve: --render .avi",
        ["retrieve", "walk", "--run", "{w}/run", "--render", "{w}/x.avi"],
        2,
        ("--render", ".avi"),
    ),
    # ------------------------------------------------------------ data check, render, tokenize
    Case(
        "data check: good, with --json",
        ["data", "check", "{w}/data", "--json", "{w}/check.json"],
        0,
        out=("check.json",),
    ),
    Case(
        "data check: --json is a folder",
        ["data", "check", "{w}/data", "--json", "{w}/a_folder"],
        2,
        ("--json", "is a folder"),
    ),
    Case("render: .avi", ["render", "{w}/good.npy", "--out", "{w}/x.avi"], 2, (".avi", ".png", ".mp4")),
    Case("render: good still", ["render", "{w}/good.npy", "--out", "{w}/still.png"], 0, out=("still.png",)),
    Case("render: values 1e30", ["render", "{w}/huge.npy", "--out", "{w}/x.png"], 2, ("huge.npy", "1e+30")),
    Case("render: text renamed .npy", ["render", "{w}/text.npy", "--out", "{w}/x.png"], 2, ("text.npy", "not a .npy")),
    Case(
        "tokenize: good",
        ["tokenize", "{w}/data", "--tokenizer", "{w}/run", "--out", "{w}/codes_ok"],
        0,
        out=("codes_ok",),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_case_is_one_clear_line_and_writes_only_its_output(
    case: Case, world: Path, run_cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    monkeypatch.setenv("REMOGPT_CACHE_DIR", str(tmp_path / "cache"))  # the text-embedding cache: not in the world
    args = [a.replace("{w}", str(world)) for a in case.args]
    allowed = tuple(world / p for p in case.out)
    before = _snapshot(world, allowed)
    code, out, err = run_cli(*args)
    assert code == case.code, (case.name, code, err)
    assert "Traceback" not in err and "Traceback" not in out
    lines = [line for line in err.splitlines() if line.strip()]
    if case.code != 0:
        assert len(lines) == 1 and lines[0].startswith("error: "), (case.name, err)
    elif case.warning:
        assert [line for line in lines if line.startswith("warning: ")], (case.name, err)
    for word in case.words:
        assert word in err, (case.name, word, err)
    assert _snapshot(world, allowed) == before, f"{case.name}: files outside its output changed"
    assert not list(world.glob(".*.partial")), "a staging folder was left behind"


def test_a_reused_out_never_mixes_runs(world: Path, run_cli: Callable[..., CliResult]):
    out = world / "gen_reuse"
    code, _, err = run_cli(*[*(a.replace("{w}", str(world)) for a in GEN), "--out", str(out), "--num-samples", "3"])
    assert code == 0, err
    assert sorted(p.name for p in out.glob("motion_*_features.npy")) == [f"motion_{i}_features.npy" for i in range(3)]
    code, _, err = run_cli(*[*(a.replace("{w}", str(world)) for a in GEN), "--out", str(out), "--seed", "1"])
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["generation.json", "motion_0_features.npy", "motion_0_joints.npy"]
    assert len(json.loads((out / "generation.json").read_text())["samples"]) == 1


# ---------------------------------------------------------------------------------------- ids are data


def _poisoned_folder(world: Path, name: str, bad_id: str) -> Path:
    folder = world / name
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(world / "data", folder)
    (folder / "train.txt").write_text(f"000000\n{bad_id}\n", encoding="utf-8")
    return folder


@pytest.mark.parametrize("bad_id", ["../victim", "{w}/victim", "sub/../../victim", "..", ".hidden", "a\\b"])
def test_ids_from_split_files_never_leave_the_folder(bad_id: str, world: Path, run_cli: Callable[..., CliResult]):
    bad_id = bad_id.replace("{w}", str(world))
    folder = _poisoned_folder(world, "poisoned", bad_id)
    with pytest.raises(DataFormatError, match="clip id"):
        open_split(folder, "train")
    before = _snapshot(world, (world / "codes_poisoned",))
    code, _, err = run_cli(
        *["tokenize", str(folder), "--tokenizer", str(world / "run"), "--out", str(world / "codes_poisoned")]
    )
    assert code == 2 and "clip id" in err and "train.txt:2" in err and len(err.strip().splitlines()) == 1, err
    assert _snapshot(world, (world / "codes_poisoned",)) == before
    assert (world / "victim.npy").read_bytes() == b"precious"


def test_a_code_index_naming_outside_files_deletes_nothing(world: Path, run_cli: Callable[..., CliResult]):
    """The reported attack: `C/index.json` lists `../victim`; re-tokenizing into C deleted victim.npy."""
    cache = world / "codes_attacked"
    cache.mkdir(exist_ok=True)
    index = {
        "format": 1,
        "tokenizer_fingerprint": "other",
        "data_hash": "x",
        "codebook_size": 64,
        "clips": {"../victim": {"frames": 4, "codes": 1}},
    }
    (cache / "index.json").write_text(json.dumps(index), encoding="utf-8")
    code, _, err = run_cli(*["tokenize", str(world / "data"), "--tokenizer", str(world / "run"), "--out", str(cache)])
    assert code == 2 and "'../victim'" in err and "index.json" in err, err
    assert (world / "victim.npy").read_bytes() == b"precious"


def test_a_symlink_in_the_output_folder_is_replaced_not_written_through(world: Path, run_cli: Callable[..., CliResult]):
    cache = world / "codes_linked"
    cache.mkdir(exist_ok=True)
    (cache / "000000.npy").symlink_to(world / "victim.npy")
    code, _, err = run_cli(*["tokenize", str(world / "data"), "--tokenizer", str(world / "run"), "--out", str(cache)])
    assert code == 0, err
    assert (world / "victim.npy").read_bytes() == b"precious"
    assert not (cache / "000000.npy").is_symlink() and np.load(cache / "000000.npy").ndim == 1


def test_symlinked_clip_files_are_read_but_ids_stay_names(world: Path):
    """A motion file that is a symlink (datasets are often linked in) is fine: only ids are checked."""
    folder = _poisoned_folder(world, "linked", "000001")
    target = folder / "new_joint_vecs" / "000001.npy"
    target.unlink()
    target.symlink_to(world / "data" / "new_joint_vecs" / "000001.npy")
    assert {c.clip_id for c in open_split(folder, "train").clips} == {"000000", "000001"}


# ---------------------------------------------------------------------------------------- damaged weights


def _stage_files(run: Path) -> list[Path]:
    return [
        run / "tokenizer" / "model.safetensors",
        run / "retriever" / "model.safetensors",
        run / "lm" / "model.safetensors",
        run / "retriever" / "Std.npy",
        run / "retriever" / "index" / "motion.faiss",
        run / "retriever" / "index" / "text_emb.npy",
    ]


@pytest.mark.parametrize("where", ["start", "middle", "end", "truncated", "4 KB overwritten"])
def test_a_damaged_weight_file_is_refused_at_load_naming_it(
    where: str, world: Path, tmp_path: Path, run_cli: Callable[..., CliResult]
):
    from remogpt.lm import ReMoGPT

    for index, original in enumerate(_stage_files(world / "run")):
        run = tmp_path / f"run{index}"
        shutil.copytree(world / "run", run, symlinks=True)
        path = run / original.relative_to(world / "run")
        data = bytearray(path.read_bytes())
        if where == "truncated":
            data = data[: len(data) // 2]
        elif where == "4 KB overwritten":
            start = len(data) // 3
            data[start : start + 4096] = os.urandom(min(4096, len(data) - start))
        else:
            at = {"start": 9, "middle": len(data) // 2, "end": len(data) - 1}[where]
            data[at] ^= 0x01
        path.write_bytes(bytes(data))
        with pytest.raises(ArtifactError, match=r"damaged|unreadable") as info:
            ReMoGPT.from_pretrained(run)
        assert str(path) in str(info.value), info.value
        code, _, err = run_cli(*["caption", str(world / "good.npy"), "--run", str(run)])
        assert code == 2 and str(path) in err and len(err.strip().splitlines()) == 1, err


def test_a_run_without_index_names_the_right_command(world: Path, tmp_path: Path, run_cli: Callable[..., CliResult]):
    run = tmp_path / "run"
    shutil.copytree(world / "run", run, symlinks=True)
    shutil.rmtree(run / "retriever" / "index")
    code, _, err = run_cli(*["caption", str(world / "good.npy"), "--run", str(run)])
    assert code == 2 and f"remogpt index build {run / 'retriever'}" in err and "--run" not in err, err


# ---------------------------------------------------------------------------------------- interrupted training


def _tokenizer_resume(world: Path, run: Path, steps: int) -> list[str]:
    """`train tokenizer --resume` with the micro run's own config (the one its checkpoint was made with)."""
    config = run / "micro_tokenizer.yaml"
    data = json.loads((world / "run" / "tokenizer" / "train_settings.json").read_text())["stage"]["data"]["root"]
    micro_tokenizer_config(Path(data), steps).to_yaml(config)
    return ["train", "tokenizer", "--config", str(config), "--out", str(run), "--resume"]


def test_a_truncated_checkpoint_is_one_line(world: Path, tmp_path: Path, run_cli: Callable[..., CliResult]):
    run = tmp_path / "run"
    shutil.copytree(world / "run" / "tokenizer", run / "tokenizer")
    ckpt = run / "tokenizer" / "checkpoints" / "last.ckpt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    code, _, err = run_cli(*_tokenizer_resume(world, run, 125))
    errors = [line for line in err.splitlines() if line.startswith("error:")]  # after the trainer's progress lines
    assert code == 2 and len(errors) == 1 and str(ckpt) in errors[0] and "damaged checkpoint" in errors[0], err
    assert "Traceback" not in err


def test_resume_cleans_stale_temporaries_and_counts_only_new_steps(
    world: Path, tmp_path: Path, run_cli: Callable[..., CliResult]
):
    run = tmp_path / "run"
    shutil.copytree(world / "run" / "tokenizer", run / "tokenizer")
    stale = run / "tokenizer" / "checkpoints" / ".last.ckpt.abc123.tmp"
    stale.write_bytes(b"")  # what a kill -9 during a checkpoint write leaves
    done = json.loads((run / "tokenizer" / "manifest.json").read_text())["extra"]["steps"]
    code, out, err = run_cli(*_tokenizer_resume(world, run, done + 2))
    assert code == 0, err
    assert not stale.exists()
    assert f"trained 2 steps after resuming at step {done} ({done + 2} in all)" in out, out


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders; run the suite as a user")
def test_a_read_only_out_is_one_line(world: Path, tmp_path: Path, run_cli: Callable[..., CliResult]):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        for args in (
            [*(a.replace("{w}", str(world)) for a in GEN), "--out", str(locked / "gen")],
            ["render", str(world / "good.npy"), "--out", str(locked / "x.png")],
            ["retrieve", "walk", "--run", str(world / "run"), "--json", str(locked / "r.json")],
        ):
            code, _, err = run_cli(*args)
            assert code == 2 and str(locked) in err and len(err.strip().splitlines()) == 1, (args, err)
    finally:
        locked.chmod(0o755)
