"""End-to-end ``anyssl train`` runs of every method on tiny settings."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from cli_helpers import TINY, run_cli

from anyssl.registry import AUGMENTATIONS


@pytest.mark.parametrize("method", ["simclr", "mocov1", "mocov2", "byol"])
def test_train_each_method_end_to_end(method: str, tmp_path: Path) -> None:
    out = tmp_path / method
    code, text = run_cli("train", "--modality", "image", "--method", method, *TINY,
                         "--out", str(out))
    assert code == 0, text
    assert {"config.yaml", "metrics.jsonl", "last.pt", "eval.json"} <= {
        p.name for p in out.iterdir()
    }
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["method"] == method and config["modality"] == "image"
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows and all(r["loss"] == r["loss"] for r in rows)  # logged and finite (not NaN)
    report = json.loads((out / "eval.json").read_text())
    for which in ("pretrained", "random_init"):
        assert 0.0 <= report[which]["linear"]["top1"] <= 1.0
        assert 0.0 <= report[which]["knn"]["top1"] <= 1.0
    assert "random init" in text.lower()


def test_yaml_config_with_flag_override(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"method": "simclr", "epochs": 1, "max_steps": 1,
                                   "batch_size": 32, "eval": False}))
    out = tmp_path / "run"
    code, text = run_cli("train", "--config", str(cfg), "--batch-size", "48", "--out", str(out))
    assert code == 0, text
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["method"] == "simclr" and saved["batch_size"] == 48
    assert not (out / "eval.json").exists()


def test_custom_views_and_aug_spec(tmp_path: Path) -> None:
    out = tmp_path / "aug"
    code, text = run_cli("train", "--method", "simclr", *TINY, "--no-eval", "--out", str(out),
                         "--aug", "crop(size=32,scale=0.2-1.0), flip, jitter(strength=0.5,p=0.8),"
                         " grayscale(p=0.2)", "--views", "3")
    assert code == 0, text
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["aug"].startswith("crop(size=32")


def test_plugin_registers_custom_augmentation(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_aug_plugin.py").write_text(
        "import torch\n"
        "from anyssl.registry import AUGMENTATIONS\n"
        "@AUGMENTATIONS.register('my_aug', scope='image', override=True)\n"
        "class MyAug:\n"
        "    '''Invert the image.'''\n"
        "    calls = 0\n"
        "    def __call__(self, x, generator=None):\n"
        "        MyAug.calls += 1\n"
        "        x = x.float() / 255 if x.dtype == torch.uint8 else x\n"
        "        return 1.0 - x\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    # the plugin's registration must not leak into other tests' registry contract checks
    monkeypatch.setattr(AUGMENTATIONS, "_entries", dict(AUGMENTATIONS._entries))
    monkeypatch.delitem(sys.modules, "my_aug_plugin", raising=False)
    out = tmp_path / "run"
    code, text = run_cli("train", "--method", "simclr", *TINY, "--no-eval", "--out", str(out),
                         "--plugin", "my_aug_plugin",
                         "--aug", "crop(size=32), my_aug(p=0.5)")
    assert code == 0, text
    plugin = sys.modules["my_aug_plugin"]
    assert plugin.MyAug.calls >= 2  # used for both views of each step


def test_precision_lr_scaling_and_monitor_flags(tmp_path: Path) -> None:
    """--precision bf16 (CPU autocast), --lr-scaling and --monitor-every reach the run: the
    resolved values in config.yaml, kNN lines in metrics.jsonl, the notes on what was chosen."""
    out = tmp_path / "run"
    code, text = run_cli("train", "--method", "simclr", "--epochs", "2", "--batch-size", "256",
                         "--precision", "bf16", "--lr-scaling", "sqrt", "--monitor-every", "1",
                         "--no-eval", "--out", str(out), "-m", "hidden_dim=32", "-e", "width=8",
                         "-d", "image_size=16")
    assert code == 0, text
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["precision"] == "bf16" and saved["lr_scaling"] == "sqrt"
    assert saved["lr"] == pytest.approx(1.0 * 16)  # simclr's base 1.0 x sqrt(256)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    knn = [r for r in rows if "knn_top1" in r]
    assert [r["epoch"] for r in knn] == [1, 2] and all(0 <= r["knn_top1"] <= 1 for r in knn)
    assert "note: data loader: in the training process (the data is in memory)" in text
    assert "simclr: the defaults for small data" in text


def test_grad_clip_and_lr_floor_flags_reach_the_run(tmp_path: Path) -> None:
    """--grad-clip, --grad-clip-mode and --final-lr-ratio override the method's recipe and are
    recorded; without them DINO's own (3.0 per parameter, floor 0.002) are."""
    out = tmp_path / "run"
    code, text = run_cli("train", "--method", "simclr", *TINY, "--no-eval", "--out", str(out),
                         "--grad-clip", "1.5", "--final-lr-ratio", "0.01", "-m", "hidden_dim=32")
    assert code == 0, text
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert (saved["grad_clip"], saved["grad_clip_mode"], saved["final_lr_ratio"]) == \
        (1.5, "global", 0.01)
    code, text = run_cli("train", "--method", "dino", *TINY, "--no-eval",
                         "--out", str(tmp_path / "dino"), "-m", "out_dim=32")
    assert code == 0, text
    saved = yaml.safe_load((tmp_path / "dino" / "config.yaml").read_text())
    assert (saved["grad_clip"], saved["grad_clip_mode"], saved["final_lr_ratio"]) == \
        (3.0, "per_parameter", 0.002)


@pytest.mark.parametrize("flag", [("--precision", "fp8"), ("--lr-scaling", "log"),
                                  ("--grad-clip-mode", "bogus")])
def test_bad_precision_or_scaling_is_one_line(flag: tuple[str, str], tmp_path: Path) -> None:
    code, text = run_cli("train", *flag, *TINY, "--out", str(tmp_path / "x"))
    assert code == 2 and text.startswith("error: ") and len(text.strip().splitlines()) == 1
    assert flag[1] in text and "choose one of" in text


def test_nonpositive_grad_clip_is_one_line(tmp_path: Path) -> None:
    code, text = run_cli("train", "--grad-clip", "0", *TINY, "--out", str(tmp_path / "x"))
    assert code == 2 and text.startswith("error: ") and len(text.strip().splitlines()) == 1
    assert "grad_clip must be > 0" in text
