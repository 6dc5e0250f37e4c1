"""Length-bucketed batches of the language model's training data."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DistributedSampler, RandomSampler

from remogpt.lm.data import LengthBucketBatchSampler


class _Items(torch.utils.data.Dataset):
    def __init__(self, lengths: list[int]) -> None:
        self.lengths = lengths

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i: int) -> int:
        return i

    def approx_lengths(self) -> list[int]:
        return self.lengths


def _padding(batches: list[list[int]], lengths: list[int]) -> int:
    return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)


def test_every_item_once_per_epoch_with_less_padding():
    lengths = list(np.random.default_rng(0).integers(20, 200, size=1000))
    data = _Items(lengths)
    sampler = LengthBucketBatchSampler(RandomSampler(data, generator=torch.Generator().manual_seed(0)), 16, False)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    shuffled = [list(b) for b in torch.randperm(1000, generator=torch.Generator().manual_seed(0)).split(16)]
    assert _padding(batches, lengths) < 0.2 * _padding([[int(i) for i in b] for b in shuffled], lengths)
    assert batches != list(sampler)  # a new epoch draws a new order
    dropped = LengthBucketBatchSampler(RandomSampler(data), 16, drop_last=True)
    assert all(len(b) == 16 for b in dropped) and len(list(dropped)) == len(dropped)


def test_it_takes_a_distributed_sampler_as_lightning_injects_it():
    data = _Items(list(range(100)))
    ranks = [list(LengthBucketBatchSampler(DistributedSampler(data, num_replicas=2, rank=r, seed=0), 8, False))
             for r in (0, 1)]  # fmt: skip
    seen = [i for batches in ranks for b in batches for i in b]
    assert sorted(seen) == list(range(100))  # each process its half, no item twice
