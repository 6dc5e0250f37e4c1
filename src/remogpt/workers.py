"""Worker processes for work that would leave a core idle (the project's reference machine has two).

Processes are spawned, not forked (safe with torch's thread pools), and each runs torch on one
thread: the processes share the cores, and more threads each only contend. Thread count changes
the last digits of float results, so code that must give the same numbers however it is run
(the embedded data build) runs on one thread in-process too (`torch_threads(1)`).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing import get_context

__all__ = ["one_thread", "torch_threads", "worker_pool"]


def one_thread() -> None:
    """Initializer of every worker process: torch on one thread."""
    import torch

    torch.set_num_threads(1)


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """`workers` spawned processes, each running torch on one thread."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"), initializer=one_thread)


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the body with torch on `count` threads, and restore the previous count after it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
