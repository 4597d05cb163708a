"""The resumable epoch sampler and the seeds behind data order and views."""

from __future__ import annotations

from pathlib import Path

import torch
from train_toys import ToySet, make_method, toy_config

from anyssl.train import EpochSampler, Trainer, mix_seed
from anyssl.train import data as data_module
from anyssl.train.data import resolve_workers


def test_sampler_is_a_seeded_permutation_per_epoch() -> None:
    s = EpochSampler(50, seed=3)
    s.set_epoch(0)
    e0 = list(s)
    s.set_epoch(1)
    e1 = list(s)
    assert sorted(e0) == sorted(e1) == list(range(50)) and e0 != e1
    assert list(EpochSampler(50, seed=3)) == e0  # same seed, same order
    assert list(EpochSampler(50, seed=4)) != e0


def test_sampler_offset_skips_consumed_samples() -> None:
    s = EpochSampler(20, seed=0)
    s.set_epoch(2)
    full = list(s)
    s.set_epoch(2, start=8)
    assert list(s) == full[8:] and len(s) == 12


def test_mix_seed_separates_streams_and_indices() -> None:
    seeds = {mix_seed(0, i, stream) for i in range(100) for stream in range(3)}
    assert len(seeds) == 300 and all(0 <= x < 2**63 for x in seeds)
    assert mix_seed(1, 5) == mix_seed(1, 5)


def test_worker_processes_give_the_same_run(tmp_path: Path) -> None:
    states = []
    for workers in (0, 2):
        out = tmp_path / str(workers)
        t = Trainer(make_method(), ToySet(32), toy_config(out, max_steps=5, num_workers=workers),
                    out)
        t.fit()
        states.append(t.method.state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_workers_default_to_several_for_files_and_none_in_memory(monkeypatch) -> None:
    class Files:
        file_backed = True

    monkeypatch.setattr(data_module, "usable_cores", lambda: 16)
    n, note = resolve_workers(None, Files())
    assert n == 15 and "15 worker process(es) decode the files" in note  # the other cores
    assert resolve_workers(None, Files(), processes_here=4)[0] == 3  # 16 cores / 4 - 1
    monkeypatch.setattr(data_module, "usable_cores", lambda: 64)
    assert resolve_workers(None, Files())[0] == 16  # capped
    monkeypatch.setattr(data_module, "usable_cores", lambda: 2)
    assert resolve_workers(None, Files())[0] == 1  # this machine: one core decodes
    assert resolve_workers(None, Files(), processes_here=2)[0] == 1  # at least one
    n, note = resolve_workers(None, object())
    assert n == 0 and "in memory" in note
    assert resolve_workers(3, object()) == (3, "data loader: 3 worker process(es) (--num-workers)")
