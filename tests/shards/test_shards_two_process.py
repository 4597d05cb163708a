"""The issue's guarantee, in real processes: 2 processes (ranks) x 2 DataLoader workers each,
reading shards through EpochSampler(order_fn=epoch_order): each sample is seen once per epoch
across all of them (the incomplete last global batch dropped), the ranks take the same number
of steps, the order is the same in a second run and in the test process, and a resume from step
k of epoch 1 yields exactly the remaining samples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch.multiprocessing as mp
from shard_toys import write_shards
from torch.utils.data import Dataset, get_worker_info

from anyssl.shards import ShardSet, epoch_order, expand_shards, read_with_fallback
from anyssl.train.data import EpochSampler, make_loader

SIZES = [12, 12, 12, 9]  # 45 samples: 5 global batches of 2 x 4, 5 samples dropped
WORLD, BATCH, WINDOW, SEED, RESUME_STEP = 2, 4, 6, 17, 2


class Keys(Dataset[tuple[str, int]]):
    """Each sample's key and the loader worker that read it."""

    file_backed = True

    def __init__(self, folder: str) -> None:
        self.shards = ShardSet(expand_shards(folder))

    def __len__(self) -> int:
        return len(self.shards)

    def __getitem__(self, i: int) -> tuple[str, int]:
        info = get_worker_info()
        return read_with_fallback(self.shards, i, lambda key, m: key), \
            -1 if info is None else info.id

    def epoch_order(self, seed: int, epoch: int) -> Any:
        return self.shards.epoch_order(seed, epoch, WINDOW)


def run(rank: int, folder: str, epochs: list[tuple[int, int]]) -> dict[str, Any]:
    """Batches of ``(epoch, start step)`` runs on a fresh dataset, sampler and 2-worker loader."""
    ds = Keys(folder)
    sampler = EpochSampler(len(ds), SEED, rank=rank, world_size=WORLD, batch_size=BATCH,
                           order_fn=lambda e: ds.epoch_order(SEED, e))
    loader = make_loader(ds, BATCH, sampler, list, 2, False, SEED)
    out: dict[str, Any] = {"batches": []}
    workers: set[int] = set()
    for epoch, step in epochs:
        sampler.set_epoch(epoch, start=step * WORLD * BATCH)
        batches = []
        for b in loader:
            batches.append([key for key, _ in b])
            workers.update(w for _, w in b)
        out["batches"].append(batches)
    out["workers"] = sorted(workers)
    out["skipped"] = ds.shards.skipped_count()
    return out


def _rank(rank: int, folder: str, out: str) -> None:
    # loader workers fork from this fresh process, as under torchrun on Linux (a spawned
    # process would otherwise spawn its workers too: seconds each)
    mp.set_start_method("fork", force=True)
    first = run(rank, folder, [(0, 0), (1, 0)])
    second = run(rank, folder, [(0, 0), (1, 0)])  # a second run with the same seed
    resumed = run(rank, folder, [(1, RESUME_STEP)])
    Path(out, f"rank{rank}.json").write_text(json.dumps(
        {"first": first, "second": second, "resumed": resumed}))


def test_each_sample_once_per_epoch_across_ranks_and_workers(tmp_path: Path) -> None:
    write_shards(tmp_path / "shards", SIZES)
    # spawn, not fork: a forked child can hang in OpenMP after the parent ran parallel ops
    mp.spawn(_rank, args=(str(tmp_path / "shards"), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD)]
    starts = [0, 12, 24, 36, 45]
    steps = 45 // (WORLD * BATCH)
    for epoch in (0, 1):
        per_rank = [r["first"]["batches"][epoch] for r in ranks]
        assert [len(b) for b in per_rank] == [steps] * WORLD  # the same number of steps
        assert all(len(b) == BATCH for bs in per_rank for b in bs)
        seen = [k for k_step in range(steps) for r in range(WORLD) for k in per_rank[r][k_step]]
        assert len(seen) == len(set(seen)) == steps * WORLD * BATCH  # once, all but < 2 x B
        order = epoch_order(starts, SEED, epoch, WINDOW)[: len(seen)]
        assert seen == [f"s{i:05d}" for i in order.tolist()]  # the order this process computes
    for r in ranks:
        assert r["second"]["batches"] == r["first"]["batches"]  # deterministic for the seed
        assert r["resumed"]["batches"][0] == r["first"]["batches"][1][RESUME_STEP:]
        assert r["first"]["skipped"] == 0 and r["first"]["workers"] == [0, 1]  # read in workers
    epoch0 = [set(k for b in r["first"]["batches"][0] for k in b) for r in ranks]
    epoch1 = [set(k for b in r["first"]["batches"][1] for k in b) for r in ranks]
    assert epoch0 != epoch1  # reshuffled across epochs
