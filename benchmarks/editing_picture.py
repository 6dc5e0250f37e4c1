"""The picture of docs/editing.md: one example of each edit, made with the demo's run.

Usage: python benchmarks/editing_picture.py [--run runs/demo] [--data data/embedded] [--out docs/editing.gif]
Continue, in-between, arm edit and a timeline side by side (joints at 10 fps, still camera), each
panel titled with what it keeps; prints what each example did.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("runs/demo"))
    parser.add_argument("--data", type=Path, default=Path("data/embedded"))
    parser.add_argument("--out", type=Path, default=Path("docs/editing.gif"))
    args = parser.parse_args()

    from remogpt.data import load_split
    from remogpt.lm import ReMoGPT, parse_timeline
    from remogpt.motion.render import render_grid

    model = ReMoGPT.from_pretrained(args.run)
    test = {c.id: c for c in load_split(args.data, "test") if "#" not in c.id and c.captions}
    clips = sorted(test.values(), key=lambda c: c.id)
    walk = next(c for c in clips if "walk" in c.captions[0].text and len(c.features) >= 80)
    other = next(c for c in clips if "jump" in c.captions[0].text and len(c.features) >= 60)
    a = walk.features[:60]
    examples = [
        ("continue: 60 kept + 60 new", "a person waves with the right hand",
         model.continue_motion("a person waves with the right hand", a, frames=60)),
        ("in-between: 60 + 40 new + 40", None, model.inbetween(a, other.features[:40], frames=40)),
        ("arms regenerated, legs kept", "a person raises both arms over the head",
         model.edit_parts(walk.features[:120], "a person raises both arms over the head", "arms")),
        ("timeline, 3 parts, 12 s", None,
         model.timeline(parse_timeline("a person walks forward (4 s); then jumps twice (4 s); then waves (4 s)"))),
    ]  # fmt: skip
    motions, titles, captions = [], [], []
    longest = max(len(e[2].joints) for e in examples)
    for title, _, result in examples:
        joints = result.joints[::2]
        pad = (longest + 1) // 2 - len(joints)  # hold the last pose so the panels loop together
        motions.append(np.concatenate([joints, np.repeat(joints[-1:], pad, 0)]) if pad > 0 else joints)
        titles.append(title)
        captions.append(result.text)
        kept = result.kept_frames or result.kept_parts
        print(f"{title}: {len(result.features)} frames, seams {result.seams}, kept {kept}; {result.text}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    render_grid(motions, args.out, captions=captions, titles=titles, fps=10.0, size_per_cell=(160, 160),
                camera="static", show_frame_counter=False, ncols=4)  # fmt: skip
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
