"""The header index of a tar: WebDataset keys and extensions, multi-member samples, skipped
entries, offsets that give back the written bytes, and truncated or corrupt shards."""

from __future__ import annotations

import tarfile
from pathlib import Path

from shard_toys import payload, samples, write_tar

from anyssl.shards import index_shard
from anyssl.shards.index import split_name


def member_bytes(path: Path, offset: int, size: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(size)


def test_split_name_follows_webdataset() -> None:
    assert split_name("a/b/000001.seg.PNG") == ("a/b/000001", "seg.png")
    assert split_name("x.jpg") == ("x", "jpg")
    assert split_name("a.b/c.txt") == ("a.b/c", "txt")  # dots in folders are not cut
    assert split_name("noext") is None and split_name("dir/.hidden") is None


def test_multi_member_keys_and_dotted_extensions(tmp_path: Path) -> None:
    items = [("d/000001", {"seg.png": b"S" * 700, "JPG": b"J" * 3, "json": b"{}"}),
             ("d/000002", {"jpg": b"j2", "cls": b"7"})]
    folder = tarfile.TarInfo("d")
    folder.type = tarfile.DIRTYPE
    link = tarfile.TarInfo("d/link.jpg")
    link.type, link.linkname = tarfile.SYMTYPE, "d/000001.JPG"
    path = write_tar(tmp_path / "a.tar", items, extra=[folder, link])
    idx = index_shard(path)
    assert not idx.truncated and [s.key for s in idx.samples] == ["d/000001", "d/000002"]
    first = idx.samples[0]
    assert sorted(first.members) == ["jpg", "json", "seg.png"]  # lowercased, dotted ext kept
    assert member_bytes(path, *first.members["seg.png"]) == b"S" * 700
    assert member_bytes(path, *first.members["jpg"]) == b"J" * 3
    assert member_bytes(path, *idx.samples[1].members["cls"]) == b"7"


def test_non_adjacent_key_is_a_separate_sample(tmp_path: Path) -> None:
    items = [("k1", {"jpg": b"a"}), ("k2", {"jpg": b"b"}), ("k1", {"cls": b"c"}),
             ("k1", {"cls": b"d"})]  # a repeated extension also starts a new sample
    idx = index_shard(write_tar(tmp_path / "a.tar", items))
    assert [(s.key, sorted(s.members)) for s in idx.samples] == [
        ("k1", ["jpg"]), ("k2", ["jpg"]), ("k1", ["cls"]), ("k1", ["cls"])]


def test_truncated_shard_keeps_the_whole_samples(tmp_path: Path) -> None:
    path = write_tar(tmp_path / "a.tar", samples(0, 20))
    full = index_shard(path)
    assert len(full.samples) == 20 and not full.truncated
    offset, size = full.samples[12].members["cls"]
    path.write_bytes(path.read_bytes()[: offset + size // 2])  # cut inside sample 12's 2nd member
    cut = index_shard(path)
    assert cut.truncated and cut.samples == full.samples[:12]


def test_cut_at_a_member_boundary_drops_the_open_sample(tmp_path: Path) -> None:
    path = write_tar(tmp_path / "a.tar", samples(0, 5))
    raw, full = path.read_bytes(), index_shard(path).samples
    # cut just before the header of sample 3's jpg, then of its cls: the sample open at the cut
    # (2, then 3) may have had more members, so the index drops it
    for header_of, whole in [(full[3].members["jpg"][0], 2), (full[3].members["cls"][0], 3)]:
        path.write_bytes(raw[: header_of - 512])
        cut = index_shard(path)
        assert cut.truncated and cut.samples == full[:whole]


def test_corrupt_header_ends_the_scan(tmp_path: Path) -> None:
    path = write_tar(tmp_path / "a.tar", samples(0, 10))
    header = index_shard(path).samples[6].members["jpg"][0] - 512
    raw = bytearray(path.read_bytes())
    raw[header: header + 100] = b"\xff" * 100  # the name field and no valid checksum
    path.write_bytes(bytes(raw))
    idx = index_shard(path)
    # sample 5 is whole, but only sample 6's header shows it: the scan stops before it
    assert idx.truncated and [s.key for s in idx.samples] == [f"s{i:05d}" for i in range(5)]
    assert member_bytes(path, *idx.samples[4].members["cls"]) == payload("s00004", "cls")


def test_unreadable_first_header_and_empty_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar at all" * 100)
    empty = tmp_path / "empty.tar"
    empty.write_bytes(b"")
    for path in (junk, empty):
        idx = index_shard(path)
        assert idx.truncated and idx.samples == []
