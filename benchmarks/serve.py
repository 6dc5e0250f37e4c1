"""`remogpt serve` as people meet it: time from clicking Generate to the video in a real browser, for
one user and for 4 users who click at the same moment, and the pictures the README shows.

Usage: python benchmarks/serve.py [--run runs/demo] [--repeats 10] [--concurrency 1,2]
Needs playwright (the test extra) and Debian's chromium. Writes benchmarks/results/serve.json,
docs/serve.png (the whole page after a generation) and docs/export_glb.png (the exported .glb of
that motion in the page's 3D viewer, turned by a drag), and prints a table.

Click → video: a headless Chromium types a prompt, clicks Generate and polls (every 50 ms) until the
page holds the video and the 3D viewer's canvas; each user has their own browser context, as
separate people do. The server runs in this process with the given queue concurrency (how many
requests are computed at once; the others wait in Gradio's queue).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import tempfile
import time
from pathlib import Path

import torch

from remogpt.serve import ServeConfig, serve, wait_until_up

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
DOCS = ROOT / "docs"
PROMPTS = (
    "a person walks forward and waves with the right hand",
    "someone jumps twice",
    "a person raises both arms over the head",
    "a man turns around and walks back",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ready(page) -> bool:
    return page.locator("#t2m_video video").count() > 0 and page.locator("#t2m_3d canvas").count() > 0


def _shown_3d(page) -> bool:
    return page.locator("#t2m_3d canvas").count() > 0


def _click_to_video(browser, url: str, prompts: list[str], seed: int, first: list | None = None) -> list[float]:
    """Open one page per prompt, click Generate on all of them, return each one's click → video seconds;
    `first` (a list) receives each one's click → 3D view seconds (the first answer)."""
    contexts = [browser.new_context(viewport={"width": 1280, "height": 1000}) for _ in prompts]
    pages = [c.new_page() for c in contexts]
    for page, prompt in zip(pages, prompts, strict=True):
        page.goto(url)
        page.locator("#prompt textarea").fill(prompt)
        page.locator("#seed input").fill(str(seed))
    started, done, shown = {}, {}, {}
    for n, page in enumerate(pages):
        page.locator("#generate").click()
        started[n] = time.perf_counter()
    deadline = time.perf_counter() + 600
    while len(done) < len(pages) and time.perf_counter() < deadline:
        for n, page in enumerate(pages):
            if n not in shown and _shown_3d(page):
                shown[n] = time.perf_counter()
            if n not in done and _ready(page):
                done[n] = time.perf_counter()
        time.sleep(0.05)
    if len(done) < len(pages):
        raise RuntimeError(f"{len(pages) - len(done)} of {len(pages)} pages never showed the video")
    for c in contexts:
        c.close()
    if first is not None:
        first.extend(shown[n] - started[n] for n in range(len(pages)))
    return [done[n] - started[n] for n in range(len(pages))]


def _pictures(browser, url: str) -> dict[str, str]:
    """The README's pictures: the whole page after one generation, and the 3D viewer turned a little."""
    context = browser.new_context(viewport={"width": 1280, "height": 1100})
    page = context.new_page()
    page.goto(url)
    page.locator("#prompt textarea").fill(PROMPTS[0])
    page.locator("#generate").click()
    page.locator("#t2m_video video").wait_for(timeout=600_000)
    page.locator("#t2m_3d canvas").wait_for(timeout=600_000)
    page.wait_for_timeout(2500)
    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=str(DOCS / "serve.png"), full_page=True)
    canvas = page.locator("#t2m_3d canvas")
    box = canvas.bounding_box()
    if box:  # drag to turn the view a little, as a user looking from the side would
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x + 120, y + 20, steps=10)
        page.mouse.up()
        page.wait_for_timeout(800)
    canvas.screenshot(path=str(DOCS / "export_glb.png"))
    context.close()
    return {"page": "docs/serve.png", "glb_viewer": "docs/export_glb.png"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=ROOT / "runs" / "demo")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--concurrency", default="1,2", help="queue concurrency values to measure")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("benchmarks/serve.py: no chromium on PATH (apt-get install chromium)")
    levels = [int(c) for c in args.concurrency.split(",")]
    report: dict[str, object] = {
        "run": str(args.run), "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                          "torch_threads": torch.get_num_threads()},
        "repeats": args.repeats, "by_concurrency": {},
    }  # fmt: skip
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        for level in levels:
            work = Path(tempfile.mkdtemp(prefix="remogpt-serve-bench-"))
            port = _free_port()
            app = serve(args.run, port=port, cfg=ServeConfig(workdir=work, concurrency=level), block=False)
            url = f"http://127.0.0.1:{port}/"
            wait_until_up(url)
            _click_to_video(browser, url, [PROMPTS[1]], seed=99)  # warm-up: first-call costs
            single_3d: list[float] = []
            single = [_click_to_video(browser, url, [PROMPTS[r % 4]], seed=r, first=single_3d)[0]
                      for r in range(args.repeats)]  # fmt: skip
            four_3d: list[list[float]] = []
            four = []
            for r in range(args.repeats):
                four_3d.append([])
                four.append(_click_to_video(browser, url, list(PROMPTS), seed=10 + r, first=four_3d[-1]))
            slowest = [max(f) for f in four]
            every = [t for f in four for t in f]
            s_med = statistics.median(single)
            report["by_concurrency"][str(level)] = {
                "single_user_s": {"min": min(single), "median": s_med, "max": max(single), "all": single},
                "single_user_3d_view_s": {"min": min(single_3d), "median": statistics.median(single_3d),
                                          "max": max(single_3d), "all": single_3d},
                "four_users_slowest_3d_view_s": {"median": statistics.median(max(f) for f in four_3d),
                                                 "all": [max(f) for f in four_3d]},
                "four_users_each_s": {"min": min(every), "median": statistics.median(every), "max": max(every)},
                "four_users_slowest_s": {"median": statistics.median(slowest), "all": slowest},
                "ratio_slowest_of_four_to_single": statistics.median(slowest) / s_med,
                "ratio_median_of_four_to_single": statistics.median(every) / s_med,
            }
            if level == levels[0]:
                report["pictures"] = _pictures(browser, url)
            app.close()
            shutil.rmtree(work, ignore_errors=True)
        browser.close()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "serve.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'concurrency':>11} | {'1 user: 3D view':>15} | {'1 user: video':>13} | {'4 users slowest: 3D':>19} | "
          f"{'video':>7}")  # fmt: skip
    for level, r in report["by_concurrency"].items():
        print(
            f"{level:>11} | {r['single_user_3d_view_s']['median']:>13.2f} s | {r['single_user_s']['median']:>11.1f} s"
            f" | {r['four_users_slowest_3d_view_s']['median']:>17.1f} s | {r['four_users_slowest_s']['median']:>5.1f} s"
        )
    print(f"wrote {RESULTS / 'serve.json'}, {DOCS / 'serve.png'}, {DOCS / 'export_glb.png'}")


if __name__ == "__main__":
    main()
