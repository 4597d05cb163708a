"""ShardSet: random access gives back the written bytes across shards, after pickling and in
DataLoader workers; counts from the manifest or from a scan; missing samples raise ShardError;
read_with_fallback skips and counts (workers included) or raises naming shard and key."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from shard_toys import payload, samples, write_shards
from torch.utils.data import DataLoader, Dataset

from anyssl.shards import MANIFEST, ShardError, ShardSet, index_shard, read_with_fallback
from anyssl.shards import write_manifest as put_manifest

SIZES = [7, 5, 9]
EXPECTED = samples(0, sum(SIZES))


def manifest(paths: list[Path], counts: list[int]) -> dict[str, object]:
    return {"format": 1, "total": sum(counts), "shards": [
        {"name": p.name, "count": c, "bytes": p.stat().st_size} for p, c in zip(paths, counts,
                                                                               strict=True)]}


def test_random_access_across_shards(tmp_path: Path) -> None:
    ss = ShardSet(write_shards(tmp_path, SIZES))
    assert len(ss) == 21 and ss.shard_starts == [0, 7, 12, 21] and ss.counts == SIZES
    assert ss.locate(7) == (1, 0) and ss.locate(20) == (2, 8)
    for i in [20, 0, 11, 7, 3, 12, 19]:  # out of order, jumping between shards
        assert ss.read(i) == EXPECTED[i]
    assert ss.describe(8) == "shard train-000001.tar, key s00008"
    with pytest.raises(IndexError, match="sample 21 out of range for 21"):
        ss.read(21)


def test_pickled_set_reads_the_same(tmp_path: Path) -> None:
    ss = ShardSet(write_shards(tmp_path, SIZES))
    ss.read(3)  # opens a file and builds an index: neither may be pickled
    ss.skipped[0] += 1
    ss.skipped[3] += 1
    copy = pickle.loads(pickle.dumps(ss))
    assert [copy.read(i) for i in range(len(copy))] == EXPECTED
    assert copy.skipped_count() == 2 and copy.counts == SIZES


class Keys(Dataset[tuple[str, bytes]]):
    def __init__(self, shards: ShardSet) -> None:
        self.shards = shards

    def __len__(self) -> int:
        return len(self.shards)

    def __getitem__(self, i: int) -> tuple[str, bytes]:
        return read_with_fallback(self.shards, i, lambda key, m: (key, m["jpg"]))


def test_dataloader_workers_read_the_written_bytes(tmp_path: Path) -> None:
    ds = Keys(ShardSet(write_shards(tmp_path, SIZES)))
    loader = DataLoader(ds, batch_size=4, num_workers=2, collate_fn=list)
    got = [s for batch in loader for s in batch]
    assert got == [(k, m["jpg"]) for k, m in EXPECTED]


def test_counts_from_the_manifest_or_a_scan(tmp_path: Path) -> None:
    paths = write_shards(tmp_path, SIZES)
    assert ShardSet(paths).counts == SIZES  # no manifest: scanned
    put_manifest(tmp_path, manifest(paths, [70, 50, 90]))
    assert ShardSet(paths).counts == [70, 50, 90]  # listed with the same size: trusted
    entry = manifest(paths, [70, 50, 90])
    entry["shards"][1]["bytes"] += 1  # type: ignore[index]
    put_manifest(tmp_path, entry)
    assert ShardSet(paths).counts == [70, 5, 90]  # another size: that shard is rescanned
    assert ShardSet(paths, counts=[1, 2, 3]).counts == [1, 2, 3]
    (tmp_path / MANIFEST).write_text("[1, 2]")
    with pytest.raises(ShardError, match="not a format-1 anyssl shard manifest"):
        ShardSet(paths)


def truncated_set(tmp_path: Path, on_error: str = "skip") -> ShardSet:
    """Shard 1 cut inside its sample 3; the manifest still counts the 5 written samples."""
    paths = write_shards(tmp_path, SIZES)
    offset, _ = index_shard(paths[1]).samples[3].members["jpg"]
    paths[1].write_bytes(paths[1].read_bytes()[: offset + 10])
    put_manifest(tmp_path, manifest(paths, SIZES))
    return ShardSet(paths, on_error=on_error)


def test_missing_samples_of_a_truncated_shard_raise(tmp_path: Path) -> None:
    ss = truncated_set(tmp_path)
    assert len(ss) == 21 and ss.read(9) == EXPECTED[9]
    for i in (10, 11):
        with pytest.raises(ShardError, match=rf"shard train-000001.tar, sample {i - 7}: missing, "
                           r"the shard holds 3 readable samples \(truncated\)"):
            ss.read(i)


def test_fallback_skips_to_the_next_sample_of_the_shard_and_counts(tmp_path: Path) -> None:
    ss = truncated_set(tmp_path)
    assert read_with_fallback(ss, 10, lambda k, m: k) == "s00007"  # 10, 11 missing: wraps to 7
    assert ss.skipped_count() == 2
    bad = {"s00002"}

    def decode(key: str, members: dict[str, bytes]) -> str:
        if key in bad:
            raise OSError("cannot identify image file")
        return key

    assert read_with_fallback(ss, 2, decode) == "s00003" and ss.skipped_count() == 3
    bad.update(k for k, _ in EXPECTED[:7])
    with pytest.raises(ShardError, match=r"train-000000\.tar: none of its 7 samples"):
        read_with_fallback(ss, 0, decode)


def test_fallback_raise_names_the_shard_and_key(tmp_path: Path) -> None:
    ss = truncated_set(tmp_path, on_error="raise")

    def decode(key: str, members: dict[str, bytes]) -> str:
        raise OSError("cannot identify image file")

    with pytest.raises(ShardError, match=r"^shard train-000002.tar, key s00013: OSError: cannot "
                       r"identify image file; -d on_error=skip skips such samples$"):
        read_with_fallback(ss, 13, decode)
    with pytest.raises(ShardError, match=r"^shard train-000001.tar, sample 4: missing.*skips"):
        read_with_fallback(ss, 11, lambda k, m: k)
    assert ss.skipped_count() == 0
    with pytest.raises(ValueError, match="on_error must be one of skip, raise; got 'ignore'"):
        ShardSet([], on_error="ignore")


def test_workers_skips_reach_the_parents_count(tmp_path: Path) -> None:
    ds = Keys(truncated_set(tmp_path))
    loader = DataLoader(ds, batch_size=3, num_workers=2, collate_fn=list, persistent_workers=True)
    for _ in range(2):  # two epochs over persistent workers
        keys = [k for batch in loader for k, _ in batch]
        assert keys[10:12] == ["s00007", "s00007"] and len(keys) == 21  # 10, 11 wrap to 7
    assert ds.shards.skipped_count() == 6  # (2 + 1 failed reads) x 2 epochs, all in workers


def test_reads_in_payload_order(tmp_path: Path) -> None:
    ss = ShardSet(write_shards(tmp_path, [3]))
    key, members = ss.read(1)
    assert members == {"jpg": payload(key, "jpg"), "cls": payload(key, "cls")}
    assert torch.equal(ss.epoch_order(0, 0, 1).sort().values, torch.arange(3))


def test_spawned_workers_share_the_count(tmp_path: Path) -> None:
    # spawned workers (the default on macOS) get the dataset pickled while being started: the
    # shared counter travels with it instead of a copy
    ds = Keys(truncated_set(tmp_path))
    loader = DataLoader(ds, batch_size=3, num_workers=1, collate_fn=list,
                        multiprocessing_context="spawn")
    assert len([k for batch in loader for k, _ in batch]) == 21
    assert ds.shards.skipped_count() == 3
