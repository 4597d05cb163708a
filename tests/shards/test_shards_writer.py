"""ShardWriter: shard sizes, the manifest after each shard, .tmp files moved into place, and a
re-run after an interruption that skips the finished shards and writes byte-identical ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from shard_toys import samples

from anyssl.shards import MANIFEST, ShardError, ShardSet, ShardWriter, expand_shards
from anyssl.shards import read_manifest as manifest_of

SOURCE = samples(0, 23, exts=("txt", "jpg", "seg.png"))


class Stop(Exception):
    pass


def write_all(out: Path, stop_at: int | None = None, **kw: object) -> ShardWriter:
    """Write SOURCE the way a converter does (skipping done shards); raise Stop at ``stop_at``."""
    with ShardWriter(out, shard_size=5, prefix="train", **kw) as w:  # type: ignore[arg-type]
        for i, (key, members) in enumerate(SOURCE):
            if i == stop_at:
                raise Stop
            if not w.done(i // 5):
                w.write(i, key, members)
    return w


def test_shards_manifest_and_contents(tmp_path: Path) -> None:
    write_all(tmp_path, meta={"modality": "image"})
    m = manifest_of(tmp_path)
    assert m is not None and m["complete"] and m["total"] == 23 and m["meta"]["modality"] == "image"
    assert [(s["name"], s["count"]) for s in m["shards"]] == [
        (f"train-{i:06d}.tar", n) for i, n in enumerate([5, 5, 5, 5, 3])]
    assert all(s["bytes"] == (tmp_path / s["name"]).stat().st_size for s in m["shards"])
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))
    ss = ShardSet(expand_shards(tmp_path))
    assert [ss.read(i) for i in range(len(ss))] == SOURCE
    assert ss.index(0).samples[0].members.keys() == {"jpg", "seg.png", "txt"}


def test_manifest_is_rewritten_after_each_shard_and_tmp_used(tmp_path: Path) -> None:
    w = ShardWriter(tmp_path, shard_size=5, prefix="train")
    for i, (key, members) in enumerate(SOURCE[:12]):
        w.write(i, key, members)
        m = manifest_of(tmp_path)
        finished = i // 5  # shards before the one being written
        assert len(m["shards"] if m else []) == finished and not (m or {}).get("complete")
        assert (tmp_path / f"train-{i // 5:06d}.tar.tmp").is_file()
        assert not (tmp_path / f"train-{i // 5:06d}.tar").exists()
    w.close()
    assert [s["count"] for s in manifest_of(tmp_path)["shards"]] == [5, 5, 2]  # type: ignore[index]


def test_rerun_after_interruption_skips_finished_shards_byte_identical(tmp_path: Path) -> None:
    write_all(tmp_path / "ref")
    with pytest.raises(Stop):
        write_all(tmp_path / "cut", stop_at=13)  # shards 0, 1 finished, 2 half written
    cut = tmp_path / "cut"
    assert [s["name"] for s in manifest_of(cut)["shards"]] == [  # type: ignore[index]
        "train-000000.tar", "train-000001.tar"]
    assert not list(cut.glob("*.tmp"))  # the half shard was dropped
    before = {p.name: p.stat().st_mtime_ns for p in cut.glob("*.tar")}
    (cut / "train-000002.tar.tmp").write_bytes(b"left by a killed run")
    w = write_all(cut)
    assert all(w.done(s) for s in range(5))
    assert {p.name: p.stat().st_mtime_ns for p in cut.glob("*.tar")
            if p.name in before} == before  # finished shards were not rewritten
    for ref in sorted((tmp_path / "ref").glob("*.tar")):
        assert (cut / ref.name).read_bytes() == ref.read_bytes()
    assert not list(cut.glob("*.tmp"))
    assert json.loads((cut / MANIFEST).read_text()) == json.loads(
        (tmp_path / "ref" / MANIFEST).read_text())


def test_resume_checks_settings_and_file_sizes(tmp_path: Path) -> None:
    write_all(tmp_path)
    with pytest.raises(ShardError, match=r"written with shard_size=5, not 7"):
        ShardWriter(tmp_path, shard_size=7, prefix="train")
    with pytest.raises(ShardError, match=r"written with meta=\{\}, not \{'image_size': 64\}"):
        ShardWriter(tmp_path, shard_size=5, prefix="train", meta={"image_size": 64})
    shard = tmp_path / "train-000002.tar"
    shard.write_bytes(shard.read_bytes()[:-1024])  # cut: no longer the listed size
    w = ShardWriter(tmp_path, shard_size=5, prefix="train")
    assert [w.done(s) for s in range(5)] == [True, True, False, True, True]
    w.close()


def test_fresh_write_removes_old_shards(tmp_path: Path) -> None:
    write_all(tmp_path)
    with ShardWriter(tmp_path, shard_size=10, prefix="train", resume=False) as w:
        for i, (key, members) in enumerate(SOURCE[:12]):
            w.write(i, key, members)
    assert sorted(p.name for p in tmp_path.glob("*.tar")) == [
        "train-000000.tar", "train-000001.tar"]
    assert len(ShardSet(expand_shards(tmp_path))) == 12


def test_bad_samples_are_rejected(tmp_path: Path) -> None:
    w = ShardWriter(tmp_path, shard_size=5)
    w.write(3, "a/k", {"jpg": b"x"})
    with pytest.raises(ValueError, match="sample positions must increase: 3 after 3"):
        w.write(3, "b", {"jpg": b"x"})
    with pytest.raises(ValueError, match=r"key without '.' in its basename .* 'a.b'"):
        w.write(4, "a.b", {"jpg": b"x"})
    with pytest.raises(ValueError, match="at least one member"):
        w.write(5, "c", {})
    w.abort()
    assert not list(tmp_path.glob("*.tmp"))
