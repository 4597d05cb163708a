"""The sharded epoch sampler: at every step the ranks' batches, concatenated in rank order, are
exactly the one-process batch of W x B (also when resuming mid-epoch), every rank sees the same
number of steps, and the order is reshuffled per epoch; rank seeds and global-batch epochs."""

from __future__ import annotations

import pytest
import torch

from anyssl.train.data import EpochSampler, make_loader, rank_seed, steps_per_epoch


def batches(size: int, seed: int, epoch: int, start: int, batch: int, world: int,
            rank: int) -> list[list[int]]:
    """The batches a drop-last loader over rank ``rank``'s shard yields."""
    s = EpochSampler(size, seed, rank=rank, world_size=world, batch_size=batch)
    s.set_epoch(epoch, start=start)
    data = list(range(size))
    loader = make_loader(data, batch, s, lambda xs: list(xs), 0, False, seed)  # type: ignore[arg-type]
    out = [list(b) for b in loader]
    assert len(s) // batch == len(out)  # __len__ agrees with what the loader yields
    return out


@pytest.mark.parametrize(("size", "batch", "world"), [(50, 4, 2), (50, 3, 3), (37, 5, 2)])
def test_union_of_ranks_is_the_one_process_batch(size: int, batch: int, world: int) -> None:
    single = batches(size, 7, 0, 0, world * batch, 1, 0)
    shards = [batches(size, 7, 0, 0, batch, world, r) for r in range(world)]
    steps = size // (world * batch)
    assert len(single) == steps and all(len(s) == steps for s in shards)
    for k in range(steps):
        joined = [i for r in range(world) for i in shards[r][k]]
        assert joined == single[k]  # the same samples in the same order
    seen = [i for s in shards for b in s for i in b]
    assert len(seen) == len(set(seen)) == steps * world * batch  # no sample twice in an epoch


@pytest.mark.parametrize("k", [1, 2, 5])
def test_resume_offset_continues_the_same_steps(k: int) -> None:
    size, batch, world, epoch = 50, 4, 2, 3
    for r in range(world):
        full = batches(size, 1, epoch, 0, batch, world, r)
        resumed = batches(size, 1, epoch, k * world * batch, batch, world, r)
        assert resumed == full[k:]


def test_epochs_reshuffle_and_ranks_share_the_order() -> None:
    a = [EpochSampler(40, 3, rank=r, world_size=2, batch_size=4) for r in range(2)]
    orders = {e: a[0].order(e) for e in range(3)}
    assert all(torch.equal(a[1].order(e), orders[e]) for e in range(3))  # same on every rank
    assert not torch.equal(orders[0], orders[1]) and not torch.equal(orders[1], orders[2])
    assert batches(40, 3, 0, 0, 4, 2, 0) != batches(40, 3, 1, 0, 4, 2, 0)


def test_one_process_keeps_the_plain_order() -> None:
    s = EpochSampler(20, 5)
    s.set_epoch(2, start=6)
    assert list(s) == s.order(2)[6:].tolist() and len(s) == 14


def test_bad_shard_arguments() -> None:
    with pytest.raises(ValueError, match="rank < world_size"):
        EpochSampler(10, rank=2, world_size=2, batch_size=2)
    with pytest.raises(ValueError, match="batch_size >= 1"):
        EpochSampler(10, world_size=2, batch_size=0)


def test_steps_per_epoch_counts_global_batches() -> None:
    data = list(range(50))
    assert steps_per_epoch(data, 4) == 12 and steps_per_epoch(data, 4, 2) == 6
    with pytest.raises(ValueError, match=r"fewer than one global batch of 64 \(2 processes x "
                       r"--batch-size 32\); lower --batch-size \(to at most 25\)"):
        steps_per_epoch(data, 32, 2)


def test_rank_seeds() -> None:
    assert rank_seed(11, 0) == 11  # a one-process run keeps its seed
    seeds = {rank_seed(11, r) for r in range(8)}
    assert len(seeds) == 8
