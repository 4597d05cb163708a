"""``probe_files`` on many files: the process pool gives the verdicts of one process, and the
cache of header checks is read on the next run, re-reads changed files, re-applies ``min_size``
and the pixel limit, and survives a corrupt file or an unwritable folder."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image

from anyssl.modalities.image import scan_headers
from anyssl.modalities.image.datasets import DataPathError
from anyssl.modalities.image.datasets_scan import ScanStats, probe_files, probe_image
from anyssl.modalities.image.scan_cache import FORMAT, cache_dir

LIMIT = 1000  # pixels: 40 x 40 (1,600: Pillow warns) and 50 x 50 (2,500: Pillow raises) are over


@pytest.fixture(autouse=True)
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test caches under its own tmp folder, never the home folder."""
    monkeypatch.setenv("ANYSSL_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def low_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", LIMIT)


def _image(file: Path, size: tuple[int, int]) -> Path:
    file.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (size[0] % 256, 90, 30)).save(file)
    return file


def _mixed(root: Path) -> list[Path]:
    """Good PNGs and JPEGs with bad files between them, sorted by name as a folder scan lists
    them: empty, text named .png, 4 x 4 px (below min_size 8), 40 x 40 and 50 x 50 px (over
    ``LIMIT``)."""
    for i in range(12):
        _image(root / "a" / f"{i:02d}.{'png' if i % 2 else 'jpg'}", (10 + i, 12))
    (root / "a" / "03_empty.png").write_bytes(b"")
    (root / "a" / "05_text.png").write_text("not an image")
    _image(root / "b" / "tiny.png", (4, 4))
    _image(root / "b" / "warned.png", (40, 40))
    _image(root / "b" / "refused.png", (50, 50))
    _image(root / "b" / "z_ok.png", (30, 20))
    return sorted(p for p in root.rglob("*") if p.is_file())


def _serial(files: list[Path], min_size: int = 8) -> tuple[list[int], list[str]]:
    """The reference: ``probe_image`` file by file, as ``probe_files`` did before the pool."""
    kept, errors = [], []
    for i, f in enumerate(files):
        try:
            probe_image(f, min_size)
            kept.append(i)
        except DataPathError as err:
            errors.append(str(err))
    return kept, errors


def _scan(files: list[Path], **kw: object) -> tuple[list[int], list[str]]:
    kept, errors = probe_files(files, skip=True, **kw)
    return kept, [str(e) for e in errors]


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files whose header is read from now on (in this process)."""
    calls: list[str] = []
    real: Callable[[str], object] = scan_headers.read_header

    def spy(file: str) -> object:
        calls.append(os.path.basename(file))
        return real(file)

    monkeypatch.setattr(scan_headers, "read_header", spy)
    return calls


@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process pool on short lists, in chunks of 3 files."""
    monkeypatch.setattr(scan_headers, "PARALLEL_MIN", 0)
    monkeypatch.setattr(scan_headers, "CHUNK", 3)


@pytest.mark.usefixtures("low_limit", "pool")
def test_pool_gives_the_verdicts_of_one_process(tmp_path: Path) -> None:
    files = _mixed(tmp_path / "data")
    expected = _serial(files)
    assert len(expected[1]) == 5 and expected[0][0] == 0
    stats = ScanStats()
    assert _scan(files, workers=2, cache=False, stats=stats) == expected
    assert stats.processes == 2 and stats.read == len(files)
    assert _scan(files, workers=1, cache=False) == expected
    for workers in (1, 2):  # without skip: the first bad file in list order raises
        with pytest.raises(DataPathError) as err:
            probe_files(files, workers=workers, cache=False)
        assert str(err.value) == f"{expected[1][0]}, or pass -d on_error=skip"


@pytest.mark.usefixtures("low_limit", "pool")
def test_second_scan_reads_the_cache(tmp_path: Path, cache_home: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    files = _mixed(data)
    before = sorted(data.rglob("*"))
    first = ScanStats()
    assert _scan(files, workers=2, cache=True, stats=first) == _serial(files)
    assert first.written and first.cache_file is not None
    assert first.cache_file.parent == cache_home / "scans" == cache_dir()
    assert sorted(data.rglob("*")) == before  # nothing written next to the data
    calls = _spy(monkeypatch)
    again = ScanStats()
    assert _scan(files, workers=2, cache=True, stats=again) == _serial(files)
    assert calls == [] and again.cached == len(files) and again.read == 0
    assert not again.written  # nothing changed: not rewritten
    assert f"checked {len(files)} image headers with 2 processes" in (first.note(0.0) or "")
    assert first.note(3600.0) is None


def test_changed_files_are_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = _mixed(tmp_path / "data")
    _scan(files, cache=True)
    _image(tmp_path / "data" / "a" / "00.jpg", (5, 5))  # new size, now below min_size
    touched = tmp_path / "data" / "a" / "01.png"
    st = touched.stat()
    os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # same bytes, new mtime
    calls = _spy(monkeypatch)
    result = _scan(files, cache=True)
    assert sorted(calls) == ["00.jpg", "01.png"]
    assert result == _serial(files) and 0 not in result[0]


@pytest.mark.usefixtures("low_limit")
def test_min_size_and_limit_are_applied_again_from_the_cache(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = _mixed(tmp_path / "data")
    _scan(files, cache=True)
    calls = _spy(monkeypatch)
    assert _scan(files, cache=True, min_size=15) == _serial(files, 15)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300)  # refuses 20 x 20 and up, from the cache
    assert _scan(files, cache=True) == _serial(files)
    assert calls == []
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2400)  # 40 x 40 passes, 50 x 50 does not
    result = _scan(files, cache=True)
    assert result == _serial(files)
    # A bomb is cached as its pixel count: read again only once the limit no longer refuses it.
    assert calls == ["warned.png"]


@pytest.mark.parametrize("content", [
    b"{not json", b'{"format": "anyssl-scan/1", "root": ', b'{"format": "other/9"}', b"[1, 2]",
    b"\xff\xfe\x00", b'{"format": "anyssl-scan/1", "root": "ROOT", "dirs": {"a": [["00.jpg"]]}}',
    b'{"format": "anyssl-scan/1", "root": "ROOT", "dirs": '
    b'{"a": [["00.jpg", "01.png"], [SIZE, SIZE], [MTIME, MTIME], [["x", {}], [true, 2]]]}}',
], ids=["not-json", "truncated", "foreign", "a-list", "binary", "short-columns", "bad-header"])
def test_corrupt_cache_file_is_ignored_and_rewritten(tmp_path: Path, content: bytes) -> None:
    files = _mixed(tmp_path / "data")
    stats = ScanStats()
    _scan(files, cache=True, stats=stats)
    assert stats.cache_file is not None
    st = (tmp_path / "data" / "a" / "00.jpg").stat()  # its real key, with a malformed header
    for name, value in (("ROOT", tmp_path / "data"), ("SIZE", st.st_size),
                        ("MTIME", st.st_mtime_ns)):
        content = content.replace(name.encode(), str(value).encode())
    stats.cache_file.write_bytes(content)
    assert _scan(files, cache=True, stats=stats) == _serial(files)
    assert stats.cached == 0 and stats.written
    assert json.loads(stats.cache_file.read_text())["format"] == FORMAT


def test_unwritable_cache_folder_still_scans(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    files = _mixed(tmp_path / "data")
    blocker = tmp_path / "a-file"
    blocker.write_text("the cache folder cannot be made under a file")
    monkeypatch.setenv("ANYSSL_CACHE", str(blocker / "cache"))
    stats = ScanStats()
    assert _scan(files, cache=True, stats=stats) == _serial(files)
    assert not stats.written and stats.cache_error
    assert "could not write the cache" in (stats.note(0.0) or "")


def test_splits_share_a_cache_file_and_gone_files_leave_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = _mixed(tmp_path / "data")
    train, test = files[::2], files[1::2]  # one folder, two lists, one cache file
    _scan(train, cache=True)
    _scan(test, cache=True)
    (tmp_path / "data" / "a" / "00.jpg").unlink()
    calls = _spy(monkeypatch)
    assert _scan(train[1:], cache=True) == _serial(train[1:])
    assert calls == []
    stats = ScanStats()
    _scan(test, cache=True, stats=stats)
    assert calls == [] and stats.cache_file is not None
    names = [n for cols in json.loads(stats.cache_file.read_text())["dirs"].values()
             for n in cols[0]]
    assert "00.jpg" not in names and len(names) == len(files) - 1


def test_short_lists_are_not_cached_unless_asked(tmp_path: Path, cache_home: Path) -> None:
    files = _mixed(tmp_path / "data")
    stats = ScanStats()
    _scan(files, stats=stats)  # cache=None: below CACHE_MIN_FILES
    assert stats.cache_file is None and not cache_home.exists()
    with pytest.raises(ValueError, match="workers must be >= 1"):
        probe_files(files, workers=0)


@pytest.mark.usefixtures("low_limit", "pool")
def test_a_broken_pool_leaves_the_rest_to_this_process(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from concurrent.futures.process import BrokenProcessPool

    files = _mixed(tmp_path / "data")

    def broken(names: list[str], which: list[int], processes: int) -> Iterator[object]:
        yield from ((i, *scan_headers.read_header(names[i])) for i in which[:4])
        raise BrokenProcessPool("a worker was killed")

    monkeypatch.setattr(scan_headers, "_pooled", broken)
    assert _scan(files, workers=2, cache=False) == _serial(files)
