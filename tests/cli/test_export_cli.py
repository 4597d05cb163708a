"""``anyssl export`` and ``anyssl train --init`` end to end on tiny runs: each format
reproduces the run's encoder (torchvision ResNet with the small stem, TorchScript, ONNX through
onnxruntime), the JSON describes the run, an export starts a new run, bad requests exit 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from cli_helpers import run_cli
from image_text_helpers import SMALL, make_pictures, write_csv
from torch import nn

from anyssl.api import load_run

ONE_STEP = ["--epochs", "1", "--max-steps", "1", "--batch-size", "16", "--no-eval"]


@pytest.fixture(scope="module")
def resnet_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One step of SimCLR with a small-stem ResNet-18 on digits (1 x 32 x 32), no evaluation."""
    out = tmp_path_factory.mktemp("export") / "resnet"
    code, text = run_cli("train", "--modality", "image", "--method", "simclr", "--encoder",
                         "resnet18", *ONE_STEP, "--out", str(out))
    assert code == 0, text
    return out


def _digits(run: Path) -> tuple[nn.Module, torch.Tensor]:
    """The run's trained encoder (eval mode) and four of its uint8 training images."""
    loaded = load_run(run / "last.pt")
    images = torch.stack([loaded.parts.train_set[i][0] for i in range(4)])
    return loaded.encoder.eval(), images


def _export(run: Path, out: Path, *extra: str) -> dict[str, Any]:
    code, text = run_cli("export", str(run / "last.pt"), "--out", str(out), *extra)
    assert code == 0, text
    assert f"wrote {out}" in text
    return json.loads(Path(f"{out}.json").read_text())


def test_state_dict_loads_into_torchvision_with_the_documented_small_stem(
        resnet_run: Path, tmp_path: Path):
    out = tmp_path / "encoder.pt"
    info = _export(resnet_run, out)
    assert info["format"] == "state_dict" and info["modality"] == "image"
    assert info["encoder"]["name"] == "resnet18" and info["encoder"]["out_dim"] == 512
    assert info["input"]["shape"] == ["batch", 1, 32, 32] and info["input"]["dtype"] == "uint8"
    norm = info["input"]["normalization"]
    assert norm == {"mean": [0.5], "std": [0.5], "inside": False}
    assert info["weights"]["stem"] == "small" and info["evaluation"] is None
    assert info["checkpoint"]["step"] == 1
    scope: dict[str, Any] = {"FILE": str(out)}
    exec("\n".join(info["weights"]["load"]), scope)  # the lines the JSON documents, as is
    encoder, images = _digits(resnet_run)
    x = (images.float() / 255 - torch.tensor(norm["mean"]).view(1, -1, 1, 1)) / torch.tensor(
        norm["std"]).view(1, -1, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(scope["model"].eval()(x), encoder(images))


def test_torchscript_reproduces_the_encoder_with_normalization_inside(
        resnet_run: Path, tmp_path: Path):
    out = tmp_path / "encoder.ts"
    info = _export(resnet_run, out)
    assert info["format"] == "torchscript" and info["verified"] is True
    assert info["input"]["normalization"]["inside"] is True and info["weights"] is None
    encoder, images = _digits(resnet_run)
    with pytest.warns(FutureWarning):  # torch.jit is deprecated in torch 2.14, still loads
        traced = torch.jit.load(str(out))
    with torch.no_grad():
        torch.testing.assert_close(traced(images), encoder(images))


def test_onnx_matches_torch_under_onnxruntime_at_another_batch_size(
        trained_run: Path, tmp_path: Path):
    ort = pytest.importorskip("onnxruntime", reason="the export extra is not installed")
    pytest.importorskip("onnxscript", reason="torch's ONNX exporter needs onnxscript")
    out = tmp_path / "encoder.onnx"  # the small CNN: a ResNet takes ~10 s to export
    info = _export(trained_run, out, "--format", "onnx")
    assert info["verified"] is True and info["input"]["normalization"]["inside"] is True
    encoder, images = _digits(trained_run)  # 4 images; the export traced 2
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(None, {"input": images.numpy()})[0])
    with torch.no_grad():
        torch.testing.assert_close(got, encoder(images), rtol=1e-3, atol=1e-4)


def test_an_export_starts_a_new_run_and_config_yaml_records_it(trained_run: Path,
                                                                tmp_path: Path):
    pytest.importorskip("safetensors")
    out = tmp_path / "smallcnn.safetensors"
    info = _export(trained_run, out)
    assert info["weights"]["layout"] == "anyssl"  # the small CNN's own state dict
    assert info["encoder"]["name"] == "smallcnn"  # the modality's default, named
    assert info["evaluation"] == json.loads((trained_run / "eval.json").read_text())
    from safetensors.torch import load_file

    enc = info["encoder"]
    scope: dict[str, Any] = {"torch": torch, "FILE": str(out), "NAME": enc["name"],
                             "MODALITY": info["modality"], "BUILD_ARGS": enc["build_args"],
                             "ARGS": enc["args"], "load_file": load_file}
    lines = [line.replace("torch.load(FILE)", "load_file(FILE)") for line in
             info["weights"]["load"]]
    exec("\n".join(lines), scope)  # the JSON's own recipe rebuilds the trained encoder
    encoder, images = _digits(trained_run)
    with torch.no_grad():
        torch.testing.assert_close(scope["encoder"].eval()(images), encoder(images))
    run = tmp_path / "continued"
    code, text = run_cli("train", "--modality", "image", "--method", "simclr", *ONE_STEP,
                         "--init", str(out), "--out", str(run))
    assert code == 0, text
    assert f"note: encoder initialized from {out}" in text
    assert yaml.safe_load((run / "config.yaml").read_text())["init"] == str(out)


def test_init_with_weights_that_do_not_fit_exits_2_naming_the_key(tmp_path: Path):
    torchvision = pytest.importorskip("torchvision")
    weights = tmp_path / "resnet18.pt"
    torch.save(torchvision.models.resnet18().state_dict(), weights)  # 3 x 7 x 7 stem, with fc
    code, text = run_cli("train", "--modality", "image", "--method", "simclr", "--encoder",
                         "resnet18", *ONE_STEP, "--init", str(weights),
                         "--out", str(tmp_path / "run"))
    assert code == 2
    assert text.strip().splitlines() == [
        f"error: --init {weights}: key 'conv1.weight' has shape (64, 3, 7, 7) but the encoder "
        "(ResNetEncoder) has 'net.conv1.weight' of shape (64, 1, 3, 3)"]
    assert not (tmp_path / "run" / "last.pt").exists()


def test_clip_exports_either_tower(tmp_path: Path):
    data = write_csv(tmp_path / "pairs.csv", make_pictures(tmp_path))
    run = tmp_path / "clip"
    code, text = run_cli("train", *SMALL, "--data", str(data), "--max-steps", "1", "--no-eval",
                         "--out", str(run))
    assert code == 0, text
    info = _export(run, tmp_path / "text.ts", "--tower", "text")
    assert info["encoder"]["tower"] == "text" and info["input"]["dtype"] == "int64"
    loaded = load_run(run / "last.pt")
    tokens = torch.stack([loaded.parts.train_set[i][0]["text"][0] for i in range(3)])  # 3 x L
    with pytest.warns(FutureWarning):
        traced = torch.jit.load(str(tmp_path / "text.ts"))
    with torch.no_grad():
        torch.testing.assert_close(traced(tokens), loaded.encoder.eval().encode("text", tokens))
    image = _export(run, tmp_path / "image.pt")
    assert image["encoder"]["tower"] == "image"
    assert image["input"]["shape"][1:] == [3, 16, 16]


@pytest.mark.parametrize(("args", "message"), [
    (["--out", "{tmp}/e.weights"], "cannot tell the format from 'e.weights'; pass --format"),
    (["--out", "{tmp}/e.pt", "--tower", "text"], "has one tower; drop --tower"),
    (["--out", "{tmp}/no/e.pt"], "does not exist; create it first"),
])
def test_bad_export_requests_exit_2_with_one_line(resnet_run: Path, tmp_path: Path,
                                                  args: list[str], message: str):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    code, text = run_cli("export", str(resnet_run / "last.pt"), *args)
    assert code == 2, text
    assert len(text.strip().splitlines()) == 1 and message in text


def test_export_never_overwrites(resnet_run: Path, tmp_path: Path):
    out = tmp_path / "e.pt"
    Path(f"{out}.json").write_text("{}")
    code, text = run_cli("export", str(resnet_run / "last.pt"), "--out", str(out))
    assert code == 2 and "e.pt.json already exists" in text
    assert not out.exists() and Path(f"{out}.json").read_text() == "{}"


def test_export_of_a_missing_checkpoint_exits_2(tmp_path: Path):
    code, text = run_cli("export", str(tmp_path / "last.pt"), "--out", str(tmp_path / "e.pt"))
    assert code == 2 and "no checkpoint at" in text
