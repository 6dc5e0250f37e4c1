"""`remogpt serve`: a local web app over a trained run — text → motion, motion → text, retrieval.

Built on Gradio, the field's habit for model demos: it brings the upload limits, the request queue
(two users at once are both answered, one after the other on a CPU), progress, examples and the
3D viewer (`Model3D`, Babylon.js bundled in the package, which plays the exported .glb's animation)
without a front end of our own. Everything is served from the package: the default theme's fonts
are local files, analytics are off, and nothing is fetched from the internet.

Files: every request writes into its own folder under one temporary root made at start-up (removed
at exit); the only user-supplied files read are the uploads Gradio has already stored in its cache,
size-limited, and no user string ever becomes a path.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from remogpt.errors import RemogptError

__all__ = ["ServeConfig", "build_app", "serve"]

EXAMPLES = (
    "a person walks forward and waves with the right hand",
    "someone jumps twice",
    "a person raises both arms over the head",
    "a man turns around and walks back",
)
MAX_RERANK = 16  # best of N in the page: past 8–16 the pick stops improving (benchmarks/lm_rerank.py)


@dataclass
class ServeConfig:
    """What the app allows: upload size, motion length, how many samples and results at once."""

    max_upload_mb: float = 5.0
    max_frames: int = 600  # 30 s at 20 fps; HumanML3D clips are at most 196 frames
    max_samples: int = 4
    max_k: int = 8
    max_prompt_chars: int = 300
    video_size: int = 300  # pixels per panel
    concurrency: int = 1  # requests computed at once (a CPU has no room for more); others queue
    workdir: Path | None = None  # default: a fresh temporary folder, removed at exit
    extra: dict[str, Any] = field(default_factory=dict)


class _Session:
    """The run, loaded once, and the folder that holds every request's files."""

    def __init__(self, run: Path, cfg: ServeConfig) -> None:
        from remogpt.lm.remogpt import ReMoGPT

        self.model = ReMoGPT.from_pretrained(run)
        self.cfg = cfg
        self.root = Path(cfg.workdir) if cfg.workdir else Path(tempfile.mkdtemp(prefix="remogpt-serve-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # the model's counters and caches are not thread-safe
        self._count = 0

    def folder(self) -> Path:
        with self._lock:
            self._count += 1
            n = self._count
        path = self.root / f"request_{n:06d}"
        path.mkdir()
        return path


def _fail(exc: BaseException) -> Exception:
    """A page shows one line: ours for bad input, a generic one (details on the console) for a bug."""
    import gradio as gr

    if isinstance(exc, gr.Error):
        return exc
    if isinstance(exc, RemogptError | ValueError):
        return gr.Error(" ".join(str(exc).split()), print_exception=False)
    traceback.print_exception(exc)
    return gr.Error("internal error (see the server's console); please report it", print_exception=False)


def _references_table(refs: list[dict]) -> list[list[Any]]:
    return [[r.get("direction", ""), round(float(r.get("score", 0.0)), 3), r.get("caption", ""), r.get("id", "")]
            for r in refs]  # fmt: skip


def _read_upload(path: str | None, session: _Session) -> tuple[np.ndarray, str]:
    """Features (T, 263) of an uploaded .npy (features or joints) or .bvh file, and its shown name."""
    from remogpt.motion.files import read_motion_file

    if not path:
        raise RemogptError("upload a motion first: .npy (features (T, 263) or joints (T, 22, 3)) or .bvh")
    file = Path(path)
    name = file.name
    size_mb = file.stat().st_size / 2**20
    if size_mb > session.cfg.max_upload_mb:
        raise RemogptError(f"{name}: {size_mb:.1f} MB, more than the {session.cfg.max_upload_mb:g} MB allowed")
    suffix = file.suffix.lower()
    if suffix == ".bvh":
        from remogpt.motion.bvh import import_bvh

        imported = import_bvh(file)
        features = imported.clips[0].features
    elif suffix == ".npy":
        features = read_motion_file(file)
    else:
        raise RemogptError(f"{name}: not a .npy or .bvh file")
    if features.shape[1] != session.model.tokenizer.feature_dim:
        raise RemogptError(f"{name}: features of {features.shape[1]} dims; this run's motions have "
                           f"{session.model.tokenizer.feature_dim}")  # fmt: skip
    if len(features) > session.cfg.max_frames:
        raise RemogptError(f"{name}: {len(features)} frames, more than the {session.cfg.max_frames} allowed "
                           f"({session.cfg.max_frames / 20:g} s at 20 fps)")  # fmt: skip
    if len(features) < 2 * session.model.tokenizer.downsample:
        raise RemogptError(f"{name}: {len(features)} frames; a motion needs at least "
                           f"{2 * session.model.tokenizer.downsample}")  # fmt: skip
    return features, name


def _downloads(out: Path, n: int, joints: np.ndarray) -> list[str]:
    """Motion n's files for the page: joints (.npy), .bvh and .glb (the 3D view shows the .glb)."""
    from remogpt.motion.export import export_motion

    np.save(out / f"motion_{n}_joints.npy", joints.astype(np.float32))
    return [str(out / f"motion_{n}_joints.npy")] + [export_motion(joints, out / f"motion_{n}.{fmt}")["path"]
                                                     for fmt in ("bvh", "glb")]  # fmt: skip


def _text_to_motion(session: _Session, prompt: str, samples: float, seed: float, temperature: float,
                    rerank: float, progress: Any) -> tuple:  # fmt: skip

    prompt = (prompt or "").strip()
    if not prompt:
        raise RemogptError("the prompt is empty; describe a motion, e.g. 'a person walks forward'")
    if len(prompt) > session.cfg.max_prompt_chars:
        raise RemogptError(f"the prompt has {len(prompt)} characters; at most {session.cfg.max_prompt_chars}")
    samples = int(min(max(1, samples or 1), session.cfg.max_samples))
    rerank = int(min(max(1, rerank or 1), MAX_RERANK))
    out = session.folder()
    progress(0.05, desc="retrieving and sampling")
    with session._lock:
        results = session.model.generate_motion([prompt], num_samples=samples, seed=int(seed or 0),
                                                temperature=float(temperature), rerank=rerank)  # fmt: skip
        refs = results[0].references
        ref_motions = [session.model.retriever.motion(r["id"]) for r in refs]
    progress(0.4, desc="exporting")
    files = [f for n, res in enumerate(results) for f in _downloads(out, n, res.joints)]
    # The 3D view, the references and the files are answered now; the video (seconds of matplotlib)
    # is drawn by the next event, `_text_to_motion_video`, from what this one leaves in `pending`.
    motions = [r.features for r in results] + ref_motions
    np.savez(out / "video_motions.npz", *motions)
    pending = {"folder": str(out), "count": len(motions),
               "captions": [prompt] * len(results) + [r["caption"] for r in refs],
               "titles": [f"generated {n}" for n in range(len(results))]
               + [f"retrieved {r['direction']}" for r in refs]}  # fmt: skip
    return str(out / "motion_0.glb"), _references_table(refs), files, pending


def _text_to_motion_video(session: _Session, pending: dict | None, progress: Any) -> str | None:
    """The side-by-side video of the last generation: the generated motions beside the retrieved ones."""
    from remogpt.motion.render import render_grid

    if not pending:
        return None
    out = Path(pending["folder"])
    with np.load(out / "video_motions.npz", allow_pickle=False) as stored:
        motions = [stored[f"arr_{i}"] for i in range(pending["count"])]
    progress(0.1, desc="rendering the video")
    side = session.cfg.video_size
    video = render_grid(motions, out / "motion.mp4", captions=pending["captions"], titles=pending["titles"],
                        size_per_cell=(side, side))  # fmt: skip
    return str(video)


EDIT_MODES = ("continue", "in-between", "edit arms", "edit legs", "timeline")


def _edit_motion(session: _Session, mode: str, text: str, upload_from: str | None, upload_to: str | None,
                 frames: float, seed: float, progress: Any) -> tuple:  # fmt: skip
    """The Edit tab: continue an uploaded motion, fill between two, regenerate its arms or legs, or
    turn a timeline ('A (4 s); then B') into one motion. Returns (3D view, video, downloads)."""
    from remogpt.lm import editing
    from remogpt.motion.render import render_motion

    text = (text or "").strip()
    if len(text) > session.cfg.max_prompt_chars:
        raise RemogptError(f"the text has {len(text)} characters; at most {session.cfg.max_prompt_chars}")
    if mode not in EDIT_MODES:
        raise RemogptError(f"choose what to do: {', '.join(EDIT_MODES)}")
    frames, seed = int(frames or 0), int(seed or 0)
    progress(0.05, desc=mode)
    if mode == "timeline":
        entries = editing.parse_timeline(text)
        seconds = sum(e.seconds or 9.8 for e in entries)
        if seconds * 20 > session.cfg.max_frames:
            raise RemogptError(f"the timeline lasts up to {seconds:g} s; the web app makes at most "
                               f"{session.cfg.max_frames / 20:g} s (the command line has no limit)")  # fmt: skip
        with session._lock:
            result = editing.timeline(session.model, entries, seed=seed)
    else:
        start, _ = _read_upload(upload_from, session)
        if mode != "in-between" and not text:
            raise RemogptError("the text is empty: say what the new part should do")
        with session._lock:
            if mode == "continue":
                result = editing.continue_motion(session.model, text, start, frames or None, seed=seed)
            elif mode == "in-between":
                if not upload_to:
                    raise RemogptError("in-between needs a second motion: upload the one to arrive at")
                end, _ = _read_upload(upload_to, session)
                result = editing.inbetween(session.model, start, end, max(1, frames or 40), text or None, seed=seed)
            else:
                result = editing.edit_parts(session.model, start, text, mode.split()[1], seed=seed)
    out = session.folder()
    progress(0.4, desc="exporting")
    files = _downloads(out, 0, result.joints)
    progress(0.6, desc="rendering the video")
    side = session.cfg.video_size
    kept = (", kept frames " + ", ".join(f"{a}–{b}" for a, b in result.kept_frames) if result.kept_frames
            else ", kept " + ", ".join(result.kept_parts) if result.kept_parts else "")  # fmt: skip
    video = render_motion(result.features, out / "motion.mp4", caption=result.text, title=f"{mode}{kept}",
                          size=(side, side))  # fmt: skip
    return str(out / "motion_0.glb"), str(video), files


def _motion_to_text(session: _Session, upload: str | None, progress: Any) -> tuple:
    from remogpt.motion.render import render_motion

    features, name = _read_upload(upload, session)
    out = session.folder()
    progress(0.1, desc="captioning")
    with session._lock:
        caption = session.model.caption([features])[0]
        found = session.model.retriever.search(motion=features, k=3, target="text", with_motions=False)
    progress(0.5, desc="rendering the video")
    side = session.cfg.video_size
    video = render_motion(features, out / "motion.mp4", caption=caption, title=name, size=(side, side))
    table = [["m2t", round(float(s), 3), c, i] for i, s, c in zip(found.ids, found.scores, found.captions, strict=True)]
    return caption, str(video), table


def _retrieve(session: _Session, query: str, upload: str | None, k: float, target: str, progress: Any) -> tuple:
    from remogpt.motion.render import render_grid

    query = (query or "").strip()
    k = int(min(max(1, k or 1), session.cfg.max_k))
    if query and upload:
        raise RemogptError("give a text or a motion, not both")
    if not query and not upload:
        raise RemogptError("type a text or upload a motion to search with")
    progress(0.1, desc="searching")
    with session._lock:
        if query:
            if len(query) > session.cfg.max_prompt_chars:
                raise RemogptError(f"the text has {len(query)} characters; at most {session.cfg.max_prompt_chars}")
            found = session.model.retriever.search(text=query, k=k, target=target)
        else:
            features, _ = _read_upload(upload, session)
            found = session.model.retriever.search(motion=features, k=k, target=target)
    motions = found.motions or [session.model.retriever.motion(i) for i in found.ids]
    out = session.folder()
    progress(0.4, desc="rendering the grid")
    side = session.cfg.video_size
    video = render_grid(motions, out / "results.mp4", captions=found.captions,
                        titles=[f"#{n + 1} {s:.3f}" for n, s in enumerate(found.scores)],
                        ncols=min(4, len(motions)), size_per_cell=(side, side))  # fmt: skip
    table = [[found.direction, round(float(s), 3), c, i]
             for i, s, c in zip(found.ids, found.scores, found.captions, strict=True)]  # fmt: skip
    return str(video), table


def build_app(run: Path | str, cfg: ServeConfig | None = None) -> Any:
    """The Gradio Blocks app of a run (loaded now, once)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    cfg = cfg or ServeConfig()
    session = _Session(Path(run), cfg)
    headers = ["direction", "score", "caption", "id"]

    def guarded(fn: Any) -> Any:
        def call(*args: Any, progress: gr.Progress = gr.Progress()) -> Any:  # noqa: B008 (Gradio's idiom)
            try:
                return fn(session, *args, progress)
            except Exception as exc:
                raise _fail(exc) from None

        return call

    temperature = float(session.model.cfg.temperature)
    with gr.Blocks(title="remogpt", analytics_enabled=False) as app:
        gr.Markdown(f"# remogpt\nRetrieval-augmented motion–language model · run `{run}`")
        with gr.Tab("Text → motion"):
            with gr.Row():
                with gr.Column(scale=1):
                    prompt = gr.Textbox(label="Prompt", placeholder="a person walks forward and waves", lines=2,
                                        elem_id="prompt")  # fmt: skip
                    samples = gr.Slider(1, cfg.max_samples, value=1, step=1, label="Samples")
                    seed = gr.Number(value=0, precision=0, label="Seed", elem_id="seed")
                    temp = gr.Slider(0.1, 2.0, value=temperature, step=0.05, label="Temperature")
                    rerank = gr.Slider(1, MAX_RERANK, value=min(session.model.cfg.rerank_candidates, MAX_RERANK),
                                       step=1, elem_id="rerank",
                                       label="Best of N (the best match with the text is kept; N× slower)")  # fmt: skip
                    generate = gr.Button("Generate", variant="primary", elem_id="generate")
                    gr.Examples([[e] for e in EXAMPLES], inputs=[prompt])
                with gr.Column(scale=2):
                    video = gr.Video(label="Generated (left) and retrieved references", elem_id="t2m_video",
                                     autoplay=True, loop=True)  # fmt: skip
                    # 4 m away: the viewer's own framing leaves the figure small.
                    viewer = gr.Model3D(label="3D view of sample 0 (drag to turn)", elem_id="t2m_3d",
                                        clear_color=(0.93, 0.95, 0.98, 1.0),
                                        camera_position=(None, None, 4.0))  # fmt: skip
            refs = gr.Dataframe(headers=headers, label="Retrieved references", elem_id="t2m_refs", interactive=False)
            downloads = gr.File(label="Downloads (.npy joints, .bvh, .glb)", file_count="multiple", elem_id="t2m_files")
            pending = gr.State(None)
            generate.click(guarded(_text_to_motion), [prompt, samples, seed, temp, rerank],
                           [viewer, refs, downloads, pending],
                           concurrency_limit=cfg.concurrency, api_name="text_to_motion",
                           ).success(guarded(_text_to_motion_video), [pending], [video],
                                     concurrency_limit=cfg.concurrency, api_name="text_to_motion_video")  # fmt: skip
        with gr.Tab("Edit and extend"):
            with gr.Row():
                with gr.Column(scale=1):
                    edit_mode = gr.Radio(list(EDIT_MODES), value="continue", label="What to do", elem_id="edit_mode")
                    edit_text = gr.Textbox(label="Text (timeline: 'a person walks (4 s); then waves (2 s)')",
                                           lines=2, elem_id="edit_text")  # fmt: skip
                    edit_from = gr.File(label="Motion to start from / to edit (.npy or .bvh)",
                                        file_types=[".npy", ".bvh"], elem_id="edit_from")  # fmt: skip
                    edit_to = gr.File(label="In-between: the motion to arrive at", file_types=[".npy", ".bvh"],
                                      elem_id="edit_to")  # fmt: skip
                    edit_frames = gr.Slider(0, 400, value=40, step=4, elem_id="edit_frames",
                                            label="New frames (20 fps; 0: the model's choice)")  # fmt: skip
                    edit_seed = gr.Number(value=0, precision=0, label="Seed")
                    edit_button = gr.Button("Make it", variant="primary", elem_id="edit_go")
                with gr.Column(scale=2):
                    edit_3d = gr.Model3D(label="3D view (drag to turn)", elem_id="edit_3d",
                                         clear_color=(0.93, 0.95, 0.98, 1.0),
                                         camera_position=(None, None, 4.0))  # fmt: skip
                    edit_video = gr.Video(label="The motion", elem_id="edit_video", autoplay=True, loop=True)
            edit_files = gr.File(label="Downloads (.npy joints, .bvh, .glb)", file_count="multiple",
                                 elem_id="edit_files")  # fmt: skip
            edit_button.click(guarded(_edit_motion),
                              [edit_mode, edit_text, edit_from, edit_to, edit_frames, edit_seed],
                              [edit_3d, edit_video, edit_files], concurrency_limit=cfg.concurrency,
                              api_name="edit")  # fmt: skip
        with gr.Tab("Motion → text"):
            with gr.Row():
                with gr.Column(scale=1):
                    upload = gr.File(label="Motion: .npy (features or joints) or .bvh", file_types=[".npy", ".bvh"],
                                     elem_id="m2t_upload")  # fmt: skip
                    caption_button = gr.Button("Caption", variant="primary", elem_id="caption")
                with gr.Column(scale=2):
                    caption = gr.Textbox(label="Caption", elem_id="m2t_caption", interactive=False)
                    m2t_video = gr.Video(label="The motion", elem_id="m2t_video", autoplay=True, loop=True)
            m2t_refs = gr.Dataframe(headers=headers, label="Retrieved captions", elem_id="m2t_refs", interactive=False)
            caption_button.click(guarded(_motion_to_text), [upload], [caption, m2t_video, m2t_refs],
                                 concurrency_limit=cfg.concurrency, api_name="motion_to_text")  # fmt: skip
        with gr.Tab("Retrieval"):
            with gr.Row():
                with gr.Column(scale=1):
                    query = gr.Textbox(label="Text query", elem_id="query")
                    query_upload = gr.File(label="…or a motion (.npy / .bvh)", file_types=[".npy", ".bvh"])
                    k = gr.Slider(1, cfg.max_k, value=4, step=1, label="Results")
                    target = gr.Radio(["motion", "text"], value="motion", label="Compare with the database's")
                    search = gr.Button("Search", variant="primary", elem_id="search")
                with gr.Column(scale=2):
                    grid = gr.Video(label="Top results", elem_id="ret_video", autoplay=True, loop=True)
            results = gr.Dataframe(headers=headers, label="Results", elem_id="ret_table", interactive=False)
            search.click(guarded(_retrieve), [query, query_upload, k, target], [grid, results],
                         concurrency_limit=cfg.concurrency, api_name="retrieve")  # fmt: skip
    app.remogpt_session = session  # for tests and benchmarks
    return app


def serve(run: Path | str, host: str = "127.0.0.1", port: int = 7860, cfg: ServeConfig | None = None,
          block: bool = True) -> Any:  # fmt: skip
    """Launch the app (127.0.0.1 unless told otherwise); returns it when `block` is False."""
    cfg = cfg or ServeConfig()
    app = build_app(run, cfg)
    root = app.remogpt_session.root
    app.queue(default_concurrency_limit=cfg.concurrency, max_size=64)
    try:
        app.launch(server_name=host, server_port=port, share=False, inbrowser=False, show_error=False,
                   max_file_size=f"{cfg.max_upload_mb:g}mb", allowed_paths=[str(root)],
                   prevent_thread_lock=not block, quiet=not block)  # fmt: skip
    finally:
        if block:
            shutil.rmtree(root, ignore_errors=True)
    return app


def wait_until_up(url: str, timeout: float = 60.0) -> None:
    """Block until the app answers (tests, benchmarks)."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
