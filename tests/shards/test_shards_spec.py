"""Shard specs: brace ranges (zero padding kept, several braces), brace lists, folders, globs,
lists of specs, and one-line errors for missing shards."""

from __future__ import annotations

from pathlib import Path

import pytest

from anyssl.shards import ShardError, expand_shards, is_shard_spec
from anyssl.shards.spec import expand_braces


def touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        (folder / n).write_bytes(b"")


def test_brace_range_keeps_zero_padding() -> None:
    assert expand_braces("t-{000008..000011}.tar") == [
        "t-000008.tar", "t-000009.tar", "t-000010.tar", "t-000011.tar"]
    assert expand_braces("t-{8..11}.tar") == ["t-8.tar", "t-9.tar", "t-10.tar", "t-11.tar"]
    assert expand_braces("t-{08..10}") == ["t-08", "t-09", "t-10"]
    assert expand_braces("plain.tar") == ["plain.tar"]


def test_several_braces_expand_as_a_product() -> None:
    assert expand_braces("{0..1}/s-{00..02}.tar") == [
        "0/s-00.tar", "0/s-01.tar", "0/s-02.tar", "1/s-00.tar", "1/s-01.tar", "1/s-02.tar"]
    assert expand_braces("{a,b}-{1..2}") == ["a-1", "a-2", "b-1", "b-2"]


def test_descending_range_is_an_error() -> None:
    with pytest.raises(ShardError, match=r"counts down; write it as \{1..3\}"):
        expand_braces("t-{3..1}.tar")


def test_brace_spec_to_existing_files(tmp_path: Path) -> None:
    touch(tmp_path, *(f"train-{i:06d}.tar" for i in range(12)))
    got = expand_shards(f"{tmp_path}/train-{{000002..000011}}.tar")
    assert [p.name for p in got] == [f"train-{i:06d}.tar" for i in range(2, 12)]


def test_folder_glob_file_and_list(tmp_path: Path) -> None:
    touch(tmp_path / "a", "b.tar", "a.tar", "notes.txt", "anyssl-shards.json")
    touch(tmp_path / "b", "x-1.tar", "x-0.tar", "y.tar")
    assert [p.name for p in expand_shards(tmp_path / "a")] == ["a.tar", "b.tar"]  # sorted
    assert [p.name for p in expand_shards(f"{tmp_path}/b/x-*.tar")] == ["x-0.tar", "x-1.tar"]
    assert expand_shards(tmp_path / "b" / "y.tar") == [tmp_path / "b" / "y.tar"]
    both = expand_shards([tmp_path / "a", str(tmp_path / "b" / "y.tar")])
    assert [p.name for p in both] == ["a.tar", "b.tar", "y.tar"]


def test_missing_shards_name_the_first_and_the_count(tmp_path: Path) -> None:
    touch(tmp_path, "train-000000.tar", "train-000001.tar", "train-000003.tar")
    with pytest.raises(ShardError, match=r"2 of the 5 expected shard files are missing, the "
                       r"first is .*train-000002\.tar$"):
        expand_shards(f"{tmp_path}/train-{{000000..000004}}.tar")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ShardError, match=r"holds no \.tar files"):
        expand_shards(tmp_path / "empty")
    with pytest.raises(ShardError, match="matches no files"):
        expand_shards(f"{tmp_path}/nothing-*.tar")
    with pytest.raises(ShardError, match="1 of the 1 expected"):
        expand_shards(tmp_path / "gone.tar")


def test_is_shard_spec(tmp_path: Path) -> None:
    touch(tmp_path / "shards", "a.tar")
    touch(tmp_path / "images", "a.jpg")
    assert is_shard_spec("x/train-{0..9}.tar") and is_shard_spec("data/train-{00..09}")
    assert is_shard_spec(tmp_path / "shards") and is_shard_spec("one.tar")
    assert not is_shard_spec(tmp_path / "images") and not is_shard_spec("cifar10")
