"""What a command imports before it answers: `remogpt --help` no torch, `generate` no training stack.

Lightning alone cost 2.1 s of a 6.9 s `generate --no-video` (issue 48) when the retriever's loader
lived beside its training module; these checks keep such imports from creeping back.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

#: Packages only training, rendering or the web app need.
TRAINING_AND_UI = ("lightning", "torchmetrics", "matplotlib", "gradio", "imageio", "sentence_transformers")


def _imported_after(code: str) -> set[str]:
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True)
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_the_command_line_loads_without_torch() -> None:
    loaded = _imported_after("import remogpt.cli")
    assert not loaded & {"torch", "transformers", "faiss", *TRAINING_AND_UI}, loaded


def test_loading_a_run_and_generating_imports_no_training_or_ui_package(micro_run: Path) -> None:
    code = (
        "from remogpt.lm import ReMoGPT\n"
        f"model = ReMoGPT.from_pretrained({str(micro_run)!r})\n"
        "model.generate_motion(['a person waves'], num_samples=1, seed=0)\n"
        "model.retriever.search(text='a person waves', k=1)\n"
    )
    loaded = _imported_after(code)
    assert "torch" in loaded  # the probe did load the model
    assert not loaded & set(TRAINING_AND_UI), sorted(loaded & set(TRAINING_AND_UI))
