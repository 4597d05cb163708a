"""The worked example of docs/new-modality.md, ``examples/anyssl-audio``, kept working: its parts
against hand-written references, a 2-step training and an evaluation through the CLI (in this
process, after ``register()``), and, in a subprocess, the package found through its
``anyssl.plugins`` entry point (a ``*.dist-info`` folder on ``sys.path`` instead of a pip
install) and a checkpoint that names the package when it is not installed."""

from __future__ import annotations

import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "examples" / "anyssl-audio" / "src"
sys.path.insert(0, str(SRC))

from anyssl_audio.data import Tones, WavFolder, pad_collate  # noqa: E402
from anyssl_audio.parts import Conv1dEncoder, Gain, Noise, Shift  # noqa: E402
from anyssl_audio.protocol import class_retrieval  # noqa: E402


# ---- the parts ------------------------------------------------------------------------------
def test_tones_pad_collate_and_encoder_shapes() -> None:
    ds = Tones("train", n=8)
    assert ds.encoder_kwargs == {"in_channels": 1} and len(ds) == 8
    clips, labels = pad_collate([ds[i] for i in range(8)])
    longest = max(ds[i][0].shape[-1] for i in range(8))
    assert clips.shape == (8, 1, longest) and labels.tolist() == [ds[i][1] for i in range(8)]
    short = min(range(8), key=lambda i: ds[i][0].shape[-1])
    n = ds[short][0].shape[-1]
    assert torch.equal(clips[short, :, :n], ds[short][0]) and not clips[short, :, n:].any()
    assert Conv1dEncoder(in_channels=1, out_dim=16)(clips).shape == (8, 16)
    assert not set(Tones("test", n=8).clips[0].flatten().tolist()) & set(
        ds.clips[0].flatten().tolist())  # train and test draw different clips


def test_augmentations_are_per_clip_seeded_and_match_references() -> None:
    x = torch.randn(4, 1, 50)
    g = torch.Generator().manual_seed(0)
    out = Gain(0.5, 1.5)(x, g)
    factors = (out / x)[:, 0, 0]
    assert torch.allclose(out, x * factors[:, None, None]) and factors.unique().numel() == 4
    shifted = Shift(0.5)(x, torch.Generator().manual_seed(1))
    for i in range(4):  # each clip is a rotation of itself, by its own offset
        assert any(torch.equal(shifted[i, 0], torch.roll(x[i, 0], s)) for s in range(26))
    a = Noise(0.1)(x, torch.Generator().manual_seed(2))
    assert torch.equal(a, Noise(0.1)(x, torch.Generator().manual_seed(2)))
    assert 0.05 < float((a - x).std()) < 0.2
    with pytest.raises(ValueError, match="shift max"):
        Shift(2.0)


def test_class_retrieval_matches_a_loop_reference() -> None:
    rng = np.random.default_rng(0)
    xtr, ytr = rng.normal(size=(30, 5)), rng.integers(0, 3, 30)
    xte, yte = rng.normal(size=(10, 5)), rng.integers(0, 3, 10)
    got = class_retrieval(xtr, ytr, xte, yte, k=4)
    hits1, hitsk = [], []
    for q, y in zip(xte, yte, strict=True):
        sims = [float(q @ t / np.linalg.norm(q) / np.linalg.norm(t)) for t in xtr]
        order = sorted(range(30), key=lambda j: -sims[j])[:4]
        hits1.append(ytr[order[0]] == y)
        hitsk.append(np.mean([ytr[j] == y for j in order]))
    assert got["top1"] == pytest.approx(np.mean(hits1))
    assert got["top_k_precision"] == pytest.approx(np.mean(hitsk)) and got["k"] == 4
    with pytest.raises(ValueError, match="k must be in"):
        class_retrieval(xtr, ytr, xte, yte, k=31)


def _write_wavs(root: Path) -> None:
    rng = np.random.default_rng(0)
    for label, pitch in (("low", 220.0), ("high", 550.0)):
        (root / label).mkdir(parents=True)
        for i in range(8):
            t = np.arange(900) / 8000
            pcm = (0.5 * np.sin(2 * np.pi * pitch * t + rng.uniform(0, 6)) * 32767).astype("<i2")
            with wave.open(str(root / label / f"{i}.wav"), "wb") as f:
                f.setnchannels(1)
                f.setsampwidth(2)
                f.setframerate(8000)
                f.writeframes(pcm.tobytes())


def test_wav_folder_reads_classes_and_splits(tmp_path: Path) -> None:
    _write_wavs(tmp_path / "wavs")
    train, test = WavFolder(str(tmp_path / "wavs")), WavFolder(str(tmp_path / "wavs"), "test")
    assert (len(train), len(test), train.num_classes) == (12, 4, 2)
    clip, label = test[0]
    assert clip.shape == (1, 900) and label in (0, 1) and float(clip.abs().max()) <= 0.51
    with pytest.raises(ValueError, match="no class folders"):
        WavFolder(str(tmp_path / "missing"))


# ---- through the CLI, registered in this process ---------------------------------------------
def test_example_trains_two_steps_and_evaluates_through_the_cli(tmp_path: Path) -> None:
    from anyssl_audio.plugin import register

    from anyssl.cli.app import app

    register()
    register()  # a second call is harmless
    runner, run = CliRunner(), tmp_path / "run"
    res = runner.invoke(app, ["train", "--modality", "audio", "--method", "simclr",
                              "--max-steps", "2", "--out", str(run), "--device", "cpu",
                              "-d", "n=96"])
    assert res.exit_code == 0, res.output
    assert "class_retrieval" in res.output and "top_k_precision" in res.output
    assert "epoch 2/2 step 2/2 loss" in res.output  # off a TTY: progress lines (1 step/epoch)
    assert "the audio modality's defaults" in res.output
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert (cfg["batch_size"], cfg["optimizer"], cfg["lr"]) == (64, "adamw", 0.002)
    assert cfg["eval_protocols"] == ["class_retrieval", "knn"]
    assert cfg["views_used"]["views"] == [
        "shift(max=0.25), gain(low=0.5,high=1.5), noise(sigma=0.05)"] * 2
    res = runner.invoke(app, ["eval", "knn", str(run / "last.pt"), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "knn" in res.output and "top1" in res.output


# ---- as an installed plugin (entry point), in a subprocess ------------------------------------
def _fake_install(site: Path) -> None:
    """What pip would write for the entry point: a dist-info with METADATA and entry points."""
    info = site / "anyssl_audio-0.2.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: anyssl-audio\nVersion: 0.2.0\n")
    (info / "entry_points.txt").write_text(
        "[anyssl.plugins]\naudio = anyssl_audio.plugin:register\n")
    (info / "top_level.txt").write_text("anyssl_audio\n")


def _anyssl(args: list[str], pythonpath: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": pythonpath, "OMP_NUM_THREADS": "1",
           "XDG_CACHE_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "anyssl", *args], capture_output=True,
                          text=True, env=env, timeout=300)


@pytest.mark.slow
def test_entry_point_plugin_and_a_checkpoint_naming_its_missing_package(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _fake_install(site)
    run = tmp_path / "run"
    path = os.pathsep.join([str(SRC), str(site)])
    res = _anyssl(["train", "--modality", "audio", "--method", "simclr", "--max-steps", "2",
                   "--out", str(run), "--device", "cpu", "--no-eval"], path, tmp_path)
    assert res.returncode == 0, res.stderr
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["modality_source"] == {"module": "anyssl_audio.plugin",
                                        "package": "anyssl-audio", "version": "0.2.0"}
    res = _anyssl(["eval", "knn", str(run / "last.pt"), "--device", "cpu"], path, tmp_path)
    assert res.returncode == 0 and "knn" in res.stdout, res.stderr
    res = _anyssl(["eval", "knn", str(run / "last.pt")], "", tmp_path)  # plugin gone
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert ("this checkpoint's modality 'audio' comes from package anyssl-audio 0.2.0 (not "
            "installed): pip install anyssl-audio") in res.stdout + res.stderr


def test_the_guide_quotes_the_example_verbatim() -> None:
    """Every code block of docs/new-modality.md headed by a file comment is an excerpt of
    that file, so the guide shows the code this module tests."""
    import re

    guide = (ROOT / "docs" / "new-modality.md").read_text()
    blocks = re.findall(r"```(?:python|toml)\n# (examples/\S+)\n(.*?)```", guide, re.S)
    assert len(blocks) >= 8
    for path, body in blocks:
        assert body.strip() in (ROOT / path).read_text(), f"{path} no longer holds:\n{body}"
