"""`remogpt serve` driven the way people use it: a real headless Chromium types, clicks, uploads and
waits for the video, the 3D viewer and the captions (Playwright's Python API on Debian's chromium)."""

from __future__ import annotations

import os
import re
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if os.environ.get("REMOGPT_REQUIRE_BROWSER") == "1":  # CI with chromium installed: a skip would hide a failure
    import playwright  # noqa: F401
else:
    pytest.importorskip("playwright", reason="playwright (a test dependency) is not installed")
    pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (.ci/run installs Debian's package)")
from playwright.sync_api import expect  # noqa: E402

TIMEOUT_MS = 180_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(micro_run: Path, tmp_path_factory: pytest.TempPathFactory):
    import torch

    from remogpt.serve import ServeConfig, serve, wait_until_up

    torch.set_num_threads(1)
    port = _free_port()
    cfg = ServeConfig(workdir=tmp_path_factory.mktemp("serve"), video_size=160)
    app = serve(micro_run, port=port, cfg=cfg, block=False)
    url = f"http://127.0.0.1:{port}/"
    wait_until_up(url)
    yield app, url
    app.close()


@pytest.fixture(scope="module")
def page(served):
    from playwright.sync_api import sync_playwright

    _, url = served
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": 1280, "height": 1000})
        requests: list[str] = []
        tab.on("request", lambda r: requests.append(r.url))
        tab.goto(url)
        tab.requests = requests  # type: ignore[attr-defined]
        yield tab
        browser.close()


def test_text_to_motion_in_the_browser(served, page, tmp_path: Path) -> None:
    app, _ = served
    model = app.remogpt_session.model
    prompt = "a person walks forward"
    # The smallest best-of-N whose pick is not sample 0, so that the page's result shows the slider
    # was read (which N that is depends on the session's micro model).
    plain = model.generate_motion([prompt], seed=0)[0].joints
    picks = {n: model.generate_motion([prompt], seed=0, rerank=n)[0].joints for n in range(2, 9)}
    best_of = next(n for n, j in picks.items() if j.shape != plain.shape or not np.allclose(j, plain))
    page.locator("#prompt textarea").fill(prompt)
    page.locator("#rerank input[type=number]").fill(str(best_of))  # checked against the library below
    page.locator("#rerank input[type=number]").press("Enter")
    page.locator("#generate").click()
    page.locator("#t2m_video video").wait_for(timeout=TIMEOUT_MS)
    page.locator("#t2m_3d canvas").wait_for(timeout=TIMEOUT_MS)
    expected = model.retriever.search(text=prompt, k=1, target="motion").captions[0]
    expect(page.locator("#t2m_refs")).to_contain_text(expected, timeout=TIMEOUT_MS)
    expect(page.locator("#t2m_files a[href$='motion_0.bvh']")).to_have_count(1, timeout=TIMEOUT_MS)
    saved = sorted(Path(app.remogpt_session.root).glob("request_*/motion_0_joints.npy"))[-1]
    expected_joints = picks[best_of]  # not sample 0: the slider mattered
    np.testing.assert_allclose(np.load(saved), expected_joints, atol=1e-5)  # the page's pick is the library's
    src = page.locator("#t2m_video video").get_attribute("src")
    assert src and src.startswith("http://127.0.0.1")
    page.wait_for_timeout(1500)  # let the viewer draw a few frames
    shot = page.locator("#t2m_3d canvas").screenshot()
    from io import BytesIO

    from PIL import Image

    pixels = np.asarray(Image.open(BytesIO(shot)).convert("L"), dtype=np.float64)
    assert pixels.std() > 2.0, "the 3D viewer shows a blank canvas"
    page.wait_for_timeout(700)
    later = np.asarray(Image.open(BytesIO(page.locator("#t2m_3d canvas").screenshot())).convert("L"), dtype=np.float64)
    assert later.shape == pixels.shape and np.abs(later - pixels).mean() > 0.05, "the skeleton does not move"
    page.screenshot(path=str(tmp_path / "serve.png"), full_page=True)
    assert (tmp_path / "serve.png").stat().st_size > 20_000


def test_bad_input_is_one_line_in_the_page(page) -> None:
    page.locator("#prompt textarea").fill("   ")
    page.locator("#generate").click()
    expect(page.locator("body")).to_contain_text("the prompt is empty", timeout=60_000)
    assert "Traceback" not in page.content()


def _file_name(name: str) -> re.Pattern[str]:
    """An uploaded file's name as the upload box shows it: Gradio renders stem and extension in two
    elements, whose text sometimes reads "bad .npy" and sometimes "bad.npy"."""
    stem, dot, ext = name.rpartition(".")
    return re.compile(re.escape(stem) + r"\s*" + re.escape(dot + ext))


def test_motion_to_text_in_the_browser(served, page, embedded_small: Path, tmp_path: Path) -> None:
    app, _ = served
    model = app.remogpt_session.model
    clip = sorted((embedded_small / "new_joint_vecs").glob("*.npy"))[0]
    features = np.load(clip)
    expected = model.caption([features])[0]  # greedy: the page must show exactly this
    page.get_by_role("tab", name="Motion → text").click()
    page.locator("#m2t_upload input[type=file]").set_input_files(str(clip))
    expect(page.locator("#m2t_upload")).to_contain_text(_file_name(clip.name), timeout=60_000)
    page.locator("#caption").click()
    box = page.locator("#m2t_caption textarea")
    page.wait_for_function("el => el.value.length > 0", arg=box.element_handle(), timeout=TIMEOUT_MS)
    assert box.input_value() == expected
    page.locator("#m2t_video video").wait_for(timeout=TIMEOUT_MS)
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((50, 7), np.float32))
    page.reload()  # a fresh page: the upload box holds one file
    page.get_by_role("tab", name="Motion → text").click()
    page.locator("#m2t_upload input[type=file]").set_input_files(str(bad))
    expect(page.locator("#m2t_upload")).to_contain_text(_file_name("bad.npy"), timeout=60_000)
    page.locator("#caption").click()
    expect(page.locator("body")).to_contain_text("match no known skeleton", timeout=60_000)


def test_continuing_a_motion_in_the_browser(served, page, embedded_small: Path) -> None:
    """The Edit tab: upload a motion, continue it; the page's joints are the library's, the upload's
    frames kept; an in-between without the second motion is refused in one line."""
    from remogpt.lm import editing

    app, _ = served
    model = app.remogpt_session.model
    clip = sorted((embedded_small / "new_joint_vecs").glob("*.npy"))[0]
    features = np.load(clip)
    page.reload()
    page.get_by_role("tab", name="Edit and extend").click()
    page.locator("#edit_text textarea").fill("a person waves")
    page.locator("#edit_from input[type=file]").set_input_files(str(clip))
    expect(page.locator("#edit_from")).to_contain_text(_file_name(clip.name), timeout=60_000)
    page.locator("#edit_frames input[type=number]").fill("24")
    page.locator("#edit_frames input[type=number]").press("Enter")
    page.locator("#edit_go").click()
    page.locator("#edit_video video").wait_for(timeout=TIMEOUT_MS)
    page.locator("#edit_3d canvas").wait_for(timeout=TIMEOUT_MS)
    expect(page.locator("#edit_files a[href$='motion_0.glb']")).to_have_count(1, timeout=TIMEOUT_MS)
    saved = sorted(Path(app.remogpt_session.root).glob("request_*/motion_0_joints.npy"))[-1]
    expected = editing.continue_motion(model, "a person waves", features, 24, seed=0)
    np.testing.assert_allclose(np.load(saved), expected.joints, atol=1e-5)
    assert len(expected.features) == len(features) + 24
    page.get_by_label("in-between").check()
    page.locator("#edit_go").click()
    expect(page.locator("body")).to_contain_text("in-between needs a second motion", timeout=60_000)


def test_retrieval_in_the_browser(served, page) -> None:
    app, _ = served
    query = "a person jumps"
    expected = app.remogpt_session.model.retriever.search(text=query, k=3, target="motion")
    page.get_by_role("tab", name="Retrieval").click()
    page.locator("#query textarea").fill(query)
    page.locator("#search").click()
    page.locator("#ret_video video").wait_for(timeout=TIMEOUT_MS)
    for caption in expected.captions[:3]:
        expect(page.locator("#ret_table")).to_contain_text(caption, timeout=TIMEOUT_MS)


def test_two_users_at_once_both_get_answers(served) -> None:
    """Two clients ask at the same moment (the queue takes them in turn); each gets its own answer."""
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import Client

    app, url = served
    retriever = app.remogpt_session.model.retriever
    queries = ("a person walks forward", "someone waves with the left hand")

    def ask(query: str) -> str:
        _, table = Client(url, verbose=False).predict(query, None, 1, "text", api_name="/retrieve")
        return str(table["data"][0][2])

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(ask, queries))
    assert answers == [retriever.search(text=q, k=1, target="text").captions[0] for q in queries]


def test_the_page_fetches_nothing_from_outside(page) -> None:
    outside = [u for u in page.requests if not u.startswith(("http://127.0.0.1", "data:", "blob:"))]
    assert outside == []


def test_users_who_wait_see_their_place_in_the_queue(served, page, monkeypatch, tmp_path: Path) -> None:
    """Three people click Generate at once with one request computed at a time: the later ones see
    Gradio's 'queue: n/m' on their output while they wait, and every one gets a 3D view in the end."""
    import time

    app, url = served
    model = app.remogpt_session.model
    real = model.generate_motion

    def slow(*args, **kwargs):  # each request holds the one worker long enough for the others to queue
        time.sleep(1.5)
        return real(*args, **kwargs)

    monkeypatch.setattr(model, "generate_motion", slow)
    browser = page.context.browser  # the module's browser: one sync Playwright per process
    tabs = [browser.new_page(viewport={"width": 1280, "height": 1000}) for _ in range(3)]
    try:
        for tab in tabs:
            tab.goto(url)
            tab.locator("#prompt textarea").fill("a person walks forward")
        for tab in tabs:
            tab.locator("#generate").click()
        expect(tabs[2].locator("#t2m_3d")).to_contain_text(re.compile(r"queue:\s*[12]\s*/\s*\d"), timeout=TIMEOUT_MS)
        tabs[2].screenshot(path=str(tmp_path / "queue.png"))
        for tab in tabs:
            tab.locator("#t2m_3d canvas").wait_for(timeout=TIMEOUT_MS)
    finally:
        for tab in tabs:
            tab.close()
