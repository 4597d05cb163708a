"""The epoch order over shards: a permutation, a pure function of (seed, epoch), new per epoch,
local (a window spans at most two shards), and the EpochSampler hook that uses it: rank blocks
and mid-epoch resume hold, a wrong order is rejected."""

from __future__ import annotations

import pytest
import torch

from anyssl.shards import epoch_order
from anyssl.train.data import EpochSampler, make_loader

STARTS = [0, 40, 80, 120, 160, 193]  # five shards, the last one shorter


def shard_of(i: int) -> int:
    return max(s for s in range(len(STARTS) - 1) if STARTS[s] <= i)


@pytest.mark.parametrize("window", [0, 1, 7, 40])
def test_a_permutation_deterministic_per_seed_and_epoch(window: int) -> None:
    a = epoch_order(STARTS, 3, 2, window)
    assert a.dtype == torch.long and torch.equal(a.sort().values, torch.arange(193))
    assert torch.equal(a, epoch_order(STARTS, 3, 2, window))  # pure
    assert not torch.equal(a, epoch_order(STARTS, 3, 3, window))  # a new order per epoch
    assert not torch.equal(a, epoch_order(STARTS, 4, 2, window))  # and per seed


@pytest.mark.parametrize("window", [5, 16, 33, 40])
def test_windows_come_from_at_most_two_shards(window: int) -> None:
    order = epoch_order(STARTS, 0, 1, window).tolist()
    for lo in range(0, len(order), window):
        assert len({shard_of(i) for i in order[lo: lo + window]}) <= 2
    # the shards are visited one after another: each shard's samples lie within a span of its
    # size plus one window on either side
    for s in range(5):
        pos = [p for p, i in enumerate(order) if shard_of(i) == s]
        assert pos[-1] - pos[0] < STARTS[s + 1] - STARTS[s] + 2 * window


def test_window_one_keeps_the_order_inside_shards() -> None:
    order = epoch_order(STARTS, 5, 0, 1).tolist()
    runs = [shard_of(order[p]) for p in range(193)
            if p == 0 or shard_of(order[p]) != shard_of(order[p - 1])]
    assert sorted(runs) == [0, 1, 2, 3, 4]  # each shard is one run of consecutive positions
    for s in range(5):
        assert [i for i in order if shard_of(i) == s] == list(range(STARTS[s], STARTS[s + 1]))
    assert torch.equal(epoch_order(STARTS, 5, 0, 0), torch.tensor(order))


def test_shard_order_changes_across_epochs() -> None:
    firsts = {shard_of(int(epoch_order(STARTS, 0, e, 1)[0])) for e in range(12)}
    assert len(firsts) > 1


def batches(sampler: EpochSampler, epoch: int, start: int, batch: int) -> list[list[int]]:
    sampler.set_epoch(epoch, start=start)
    data = list(range(sampler.size))
    loader = make_loader(data, batch, sampler, list, 0, False, 0)  # type: ignore[arg-type]
    return [list(b) for b in loader]


def test_sampler_rank_blocks_and_resume_follow_order_fn() -> None:
    order_fn = lambda e: epoch_order(STARTS, 9, e, 16)  # noqa: E731
    world, batch = 2, 4
    ranks = [EpochSampler(193, 0, rank=r, world_size=world, batch_size=batch, order_fn=order_fn)
             for r in range(world)]
    for epoch in (0, 1):
        full = [batches(s, epoch, 0, batch) for s in ranks]
        steps = 193 // (world * batch)
        assert [len(f) for f in full] == [steps, steps]
        joined = [i for k in range(steps) for r in range(world) for i in full[r][k]]
        assert joined == order_fn(epoch)[: steps * world * batch].tolist()  # the order, in blocks
        for k in (1, 5, steps - 1):  # resume at step k continues at the exact sample
            assert [batches(s, epoch, k * world * batch, batch) for s in ranks] == \
                [f[k:] for f in full]


@pytest.mark.parametrize(("bad", "what"), [
    (lambda e: torch.arange(9), r"\(9,\) torch.int64 tensor"),
    (lambda e: torch.zeros(10, dtype=torch.long), r"\(10,\) torch.int64 tensor"),
    (lambda e: torch.arange(1, 11), r"\(10,\) torch.int64 tensor"),
    (lambda e: torch.arange(10.0), r"\(10,\) torch.float32 tensor"),
    (lambda e: list(range(10)), "list"),
])
def test_sampler_rejects_an_order_that_is_not_a_permutation(bad: object, what: str) -> None:
    s = EpochSampler(10, order_fn=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=rf"the dataset's epoch_order .* must return a "
                       rf"permutation of range\(10\) for epoch 0; got a {what}"):
        list(s)
    ok = EpochSampler(10, order_fn=lambda e: torch.arange(9, -1, -1, dtype=torch.int32))
    assert list(ok) == list(range(9, -1, -1))
