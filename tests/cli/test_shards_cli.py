"""``anyssl shards``: digits and a tiny image-text manifest written as shards, resumed after an
interruption byte for byte, trained on end to end; bad input is one line and exit code 2."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_helpers import TINY, run_cli
from image_text_helpers import make_pictures, one_line_error, write_csv

from anyssl.shards import MANIFEST


@pytest.fixture(scope="module")
def digits_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("shards") / "digits"
    code, text = run_cli("shards", "digits", str(out), "--shard-size", "500",
                         "--image-format", "png")
    assert code == 0, text
    assert re.findall(r"^shard \d/3: \d+ samples", text, re.M) == [
        "shard 1/3: 500 samples", "shard 2/3: 500 samples", "shard 3/3: 347 samples"]
    return out


def test_writes_shards_and_a_manifest(digits_shards: Path) -> None:
    manifest = json.loads((digits_shards / MANIFEST).read_text())
    assert [s["name"] for s in manifest["shards"]] == [f"train-00000{i}.tar" for i in range(3)]
    assert manifest["total"] == 1347 and manifest["complete"]
    meta = manifest["meta"]
    assert meta["modality"] == "image" and meta["source"] == "digits"
    assert (meta["image_size"], meta["channels"], meta["image_format"]) == (32, 1, "png")
    assert meta["label_names"] == [str(i) for i in range(10)] and meta["labeled"]


def test_a_rerun_writes_only_the_missing_shard(digits_shards: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    out.mkdir()
    for f in digits_shards.iterdir():
        (out / f.name).write_bytes(f.read_bytes())
    last = (out / "train-000002.tar").read_bytes()
    (out / "train-000002.tar").unlink()  # interrupted while writing the last shard
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["shards"], manifest["complete"] = manifest["shards"][:2], False
    manifest["total"] = 1000
    (out / MANIFEST).write_text(json.dumps(manifest))
    code, text = run_cli("shards", "digits", str(out), "--shard-size", "500",
                         "--image-format", "png")
    assert code == 0, text
    assert "shard 1/3 already written, skipped" in text
    assert "shard 2/3 already written, skipped" in text
    assert "shard 3/3: 347 samples" in text and "shard 1/3: 500" not in text
    assert (out / "train-000002.tar").read_bytes() == last
    assert (out / MANIFEST).read_text() == (digits_shards / MANIFEST).read_text()


def test_train_reads_a_brace_spec_end_to_end(digits_shards: Path, tmp_path: Path) -> None:
    code, text = run_cli("train", "--modality", "image", "--method", "simclr", *TINY,
                         "--data", f"{digits_shards}/train-{{000000..000002}}.tar",
                         "--no-eval", "--out", str(tmp_path / "run"))
    assert code == 0, text
    assert "the train split holds 1,078 of 1,347 samples in 3 shards" in text
    assert (tmp_path / "run" / "last.pt").is_file()


@pytest.mark.parametrize("lazy", [False, True])
def test_image_text_shards_train_clip(tmp_path: Path, lazy: bool) -> None:
    pics = tmp_path / "pics"
    pics.mkdir()
    manifest = write_csv(pics / "pairs.csv", make_pictures(pics))
    code, text = run_cli("shards", str(manifest), str(tmp_path / "sh"), "--modality",
                         "image-text", "--shard-size", "16", "-d", "label_key=label",
                         "--image-size", "16")
    assert code == 0, text
    assert "shard 2/2: 16 samples" in text
    meta = json.loads((tmp_path / "sh" / MANIFEST).read_text())["meta"]
    assert meta["label_names"] == ["blue", "green", "red", "yellow"]
    code, text = run_cli("train", "--modality", "image-text", "--method", "clip",
                         "--data", str(tmp_path / "sh"), "-e", "image_width=8", "-e",
                         "text_width=16", "--batch-size", "8", "--max-steps", "2",
                         "--eval-protocol", "zeroshot", "--eval-protocol", "retrieval",
                         "--num-workers", "1", "--out", str(tmp_path / "run"),
                         *(["-d", "text_in_memory_max=4"] if lazy else []))
    assert code == 0, text
    assert re.search(r"^zeroshot\s+top1", text, re.M)
    assert re.search(r"^retrieval\s+i2t_r1", text, re.M)
    assert ("tokenized on access" in text) == lazy


@pytest.mark.parametrize(("args", "needle"), [
    (["train", "--data", "{d}/train-{{000000..000009}}.tar"], "7 of the 10 expected"),
    (["train", "--data", "{d}/missing.tar"], "missing.tar"),
    (["train", "--data", "{d}", "-d", "shuffle_window=-1"], "shuffle_window must be >= 0"),
    (["train", "--data", "{d}", "-d", "on_error=maybe"], "on_error must be"),
    (["shards", "no-such-dataset", "{d}/x"], "no-such-dataset"),
    (["shards", "digits", "{d}/x", "--modality", "graph"], "--modality must be one of"),
    (["shards", "digits", "{d}/x", "--image-size", "8", "-d", "image_size=8"],
     "give the size once"),
])
def test_bad_input_is_one_line(digits_shards: Path, args: list[str], needle: str,
                               tmp_path: Path) -> None:
    filled = [a.format(d=digits_shards) for a in args]
    extra = ["--no-eval", "--max-steps", "1", "--out", str(tmp_path / "r")] \
        if args[0] == "train" else []
    code, text = run_cli(*filled, *extra)
    one_line_error(code, text, needle)


def test_a_rerun_with_other_settings_is_refused(digits_shards: Path) -> None:
    code, text = run_cli("shards", "digits", str(digits_shards), "--shard-size", "400",
                         "--image-format", "png")
    one_line_error(code, text, "shard_size=500")
