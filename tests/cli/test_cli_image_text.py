"""The CLI on image-text pairs: CLIP on a user's manifest, zero-shot and retrieval evaluation
(also on other data, tokenized with the checkpoint's tokenizer), bad evaluation requests and the
embedded OpenMoji default. Bad data is in ``test_cli_image_text_data.py``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from cli_helpers import run_cli
from image_text_helpers import (
    LABELED,
    PAIR_EVAL,
    SIZE,
    SMALL,
    assert_rows,
    make_pictures,
    one_line_error,
    pair_sets,
    write_csv,
)

from anyssl.api import load_run
from anyssl.methods.clip import CLIP
from anyssl.registry import DATASETS


@pytest.fixture(scope="module")
def pictures(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, str]]:
    """40 PNGs on disk (made once per module) and their manifest rows."""
    return make_pictures(tmp_path_factory.mktemp("pictures"))


@pytest.fixture(scope="module")
def clip_run(pictures: list[dict[str, str]],
             tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A finished CLIP run on the labeled manifest: (run folder, manifest)."""
    root = tmp_path_factory.mktemp("it")
    data = write_csv(root / "pairs.csv", pictures)
    out = root / "clip"
    code, text = run_cli("train", *SMALL, *LABELED, "--data", str(data), "--max-steps", "2",
                         *PAIR_EVAL, "--out", str(out))
    assert code == 0, text
    return out, data


def test_train_on_a_manifest_reports_the_pair_protocols(clip_run: tuple[Path, Path]):
    report = json.loads((clip_run[0] / "eval.json").read_text())
    for column in ("pretrained", "random_init"):
        assert set(report[column]) == {"zeroshot", "retrieval"}  # as --eval-protocol asked
        assert report[column]["zeroshot"]["chance"] == 1 / 4  # the four colours


def test_eval_zeroshot_on_the_runs_own_labels(clip_run: tuple[Path, Path], tmp_path: Path):
    out = tmp_path / "zs.json"
    code, text = run_cli("eval", "zeroshot", str(clip_run[0] / "last.pt"), "--out", str(out))
    assert code == 0, text
    assert_rows(text, "zeroshot", "top1", "chance", "majority")
    report = json.loads(out.read_text())
    for column in ("pretrained", "random_init"):
        zs = report[column]["zeroshot"]
        assert 0.0 <= zs["top1"] <= 1.0
        assert zs["chance"] == 1 / 4 and zs["majority"] == 2 / 8  # 2 test images per colour


def test_eval_zeroshot_classes_and_templates_match_a_hand_built_classifier(
        clip_run: tuple[Path, Path], tmp_path: Path):
    classes, templates = ["navy", "lime", "crimson", "gold"], ["a {} shape.", "{}"]
    out = tmp_path / "zs.json"
    code, text = run_cli("eval", "zeroshot", str(clip_run[0] / "last.pt"), "--classes",
                         ",".join(classes), "--template", templates[0], "--template",
                         templates[1], "--out", str(out))
    assert code == 0, text
    got = json.loads(out.read_text())["pretrained"]["zeroshot"]["top1"]
    run = load_run(clip_run[0] / "last.pt")
    method, test = run.parts.method.eval(), pair_sets(run)[1]
    assert isinstance(method, CLIP)
    with torch.no_grad():  # CLIP sec. 3.1.4: mean of unit prompt embeddings, renormalized
        weights = torch.stack([F.normalize(F.normalize(method.encode(
            "text", test.tokenize([t.replace("{}", c) for t in templates])), dim=1).mean(0),
            dim=0) for c in classes])  # C x E
        predicted = (method.encode("image", test.images) @ weights.T).argmax(1)  # N
    assert got == pytest.approx(float((predicted == test.targets).float().mean()))


def test_eval_retrieval_reports_recall_and_chance(clip_run: tuple[Path, Path], tmp_path: Path):
    out = tmp_path / "ret.json"
    code, text = run_cli("eval", "retrieval", str(clip_run[0] / "last.pt"), "--out", str(out))
    assert code == 0, text
    assert_rows(text, "retrieval", "i2t_r1", "t2i_r5", "chance_i2t_r1", "chance_t2i_r1")
    report = json.loads(out.read_text())
    n_test = len(pair_sets(load_run(clip_run[0] / "last.pt"))[1])
    assert n_test == 8
    for column in ("pretrained", "random_init"):
        metrics = report[column]["retrieval"]
        assert all(0.0 <= v <= 1.0 for v in metrics.values()), metrics
        assert metrics["chance_t2i_r1"] == 1 / n_test
        assert metrics["chance_i2t_r1"] == pytest.approx(1 / n_test)  # one caption each


def test_the_checkpoint_tokenizer_reads_other_data(clip_run: tuple[Path, Path],
                                                   pictures: list[dict[str, str]],
                                                   tmp_path: Path):
    checkpoint = clip_run[0] / "last.pt"
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)["data_state"]
    assert isinstance(saved["tokenizer"], str) and json.loads(saved["tokenizer"])["model"]
    other = tmp_path / "other.jsonl"  # words never seen in training, two captions each
    other.write_text("".join(json.dumps({
        "filepath": r["filepath"], "title": [f"zebra quokka {i}", "xylophone narwhal"],
        "label": "odd" if i % 2 else "even"}) + "\n" for i, r in enumerate(pictures)))
    out = tmp_path / "ret.json"
    code, text = run_cli("eval", "retrieval", str(checkpoint), "--data", str(other),
                         "--out", str(out))
    assert code == 0, text
    assert json.loads(out.read_text())["pretrained"]["retrieval"]["chance_t2i_r1"] == 1 / 8
    run = load_run(checkpoint, data=str(other))
    for ds in pair_sets(run):
        assert ds.tokenizer.to_str() == saved["tokenizer"]
        assert int(ds.text.max()) < ds.tokenizer.vocab_size
    own = DATASETS.build("path", "image-text", root=other, label_key="label",
                         allow_outside=True,
                         image_size=SIZE).tokenizer  # what the other data alone would train
    assert own.to_str() != saved["tokenizer"]


def test_eval_and_embed_take_data_args_for_other_columns(clip_run: tuple[Path, Path],
                                                         pictures: list[dict[str, str]],
                                                         tmp_path: Path):
    """Other data with its own column names: ``-d`` adds to the run's data arguments."""
    other = tmp_path / "other.jsonl"
    other.write_text("".join(json.dumps({"image": r["filepath"], "text": r["title"]}) + "\n"
                             for r in pictures))
    checkpoint = str(clip_run[0] / "last.pt")
    code, text = run_cli("eval", "retrieval", checkpoint, "--data", str(other))
    one_line_error(code, text, "filepath")  # the run's own column names do not fit
    flags = ["--data", str(other), "-d", "image_key=image", "-d", "caption_key=text"]
    code, text = run_cli("eval", "retrieval", checkpoint, *flags,
                         "--out", str(tmp_path / "ret.json"))
    assert code == 0, text
    assert json.loads((tmp_path / "ret.json").read_text())["pretrained"]["retrieval"]
    code, text = run_cli("embed", checkpoint, *flags, "--split", "test",
                         "--out", str(tmp_path / "emb.npy"))
    assert code == 0, text
    assert np.load(tmp_path / "emb.npy").shape[0] == 8




# ---- bad evaluation requests ------------------------------------------------------------------
@pytest.mark.parametrize(("args", "needles"), [
    (["--classes", "a"], ["at least two"]),
    (["--classes", "a,b,c"], ["3 classes", "4 labels"]),
    (["--template", "a photo"], ["'a photo'", "{}"]),
])
def test_bad_zeroshot_options_exit_2(clip_run: tuple[Path, Path], args: list[str],
                                     needles: list[str]):
    code, text = run_cli("eval", "zeroshot", str(clip_run[0] / "last.pt"), *args)
    one_line_error(code, text, *needles)


def test_zeroshot_needs_a_two_tower_checkpoint(tmp_path: Path):
    out = tmp_path / "simclr"
    code, text = run_cli("train", "--modality", "image", "--method", "simclr", "--encoder",
                         "smallcnn", "-e", "width=8", "--max-steps", "1", "--batch-size", "16",
                         "--no-eval", "--out", str(out))
    assert code == 0, text
    code, text = run_cli("eval", "zeroshot", str(out / "last.pt"))
    one_line_error(code, text, "two-tower method", "clip")


def test_clip_needs_paired_inputs(tmp_path: Path):
    code, text = run_cli("train", "--modality", "image", "--method", "clip",
                         "--out", str(tmp_path / "run"))
    one_line_error(code, text, "paired inputs", "--modality image-text")
    assert not (tmp_path / "run").exists()


def test_list_methods_offers_clip_only_where_inputs_are_paired():
    listed = {}
    for modality in ("image", "image-text"):
        code, text = run_cli("list", "methods", "--modality", modality)
        assert code == 0, text
        listed[modality] = {line.split()[0] for line in text.splitlines() if line.strip()}
    assert "clip" not in listed["image"] and {"simclr", "byol"} <= listed["image"]
    assert "clip" in listed["image-text"]


@pytest.mark.slow
def test_the_default_command_trains_clip_on_openmoji(tmp_path: Path):
    out = tmp_path / "openmoji"
    code, text = run_cli("train", "--modality", "image-text", "--method", "clip",
                         "--epochs", "2", "--out", str(out))
    assert code == 0, text
    report = json.loads((out / "eval.json").read_text())
    for column in ("pretrained", "random_init"):
        assert set(report[column]) == {"zeroshot", "retrieval", "linear"}
        assert report[column]["zeroshot"]["chance"] == 1 / 12  # OpenMoji's 12 groups
        assert 0.0 <= report[column]["retrieval"]["i2t_r1"] <= 1.0
    assert_rows(text, "zeroshot", "top1", "chance", "majority")
    assert_rows(text, "retrieval", "i2t_r1", "t2i_r5", "chance_t2i_r1")
    assert_rows(text, "linear", "top1")


def test_per_view_specs_point_at_the_tower_recipes(tmp_path: Path):
    for flags in (["--aug", "crop(size=16)"], ["--views", "crop(size=16); crop(size=16)"]):
        code, text = run_cli("train", "--modality", "image-text", "--method", "clip", *flags,
                             "--max-steps", "1", "--out", str(tmp_path / "run"))
        one_line_error(code, text, "per input", "recipe:clip-text-aug")
        assert not (tmp_path / "run").exists()
