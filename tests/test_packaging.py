"""Packaging: the wheel installs ``anyssl``, ``anyssl.modalities`` and ``anyssl.cli`` (never a
top-level ``cli`` or ``modalities``); the editable install imports them from anywhere."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_file_list(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
         "-q", "-w", str(tmp_path)],
        check=True, capture_output=True,
    )
    (wheel,) = tmp_path.glob("anyssl-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"anyssl", next(t for t in tops if t.endswith(".dist-info"))}
    for required in ("anyssl/__init__.py", "anyssl/py.typed", "anyssl/methods/moco.py",
                     "anyssl/train/loop.py", "anyssl/eval/linear.py",
                     "anyssl/modalities/image/__init__.py", "anyssl/cli/app.py",
                     "anyssl/modalities/timeseries/data/GunPoint_TRAIN.tsv",
                     "anyssl/modalities/image_text/data/openmoji64.npz",
                     "anyssl/modalities/image_text/data/README.md",
                     "anyssl/modalities/text/tokenizer.py"):
        assert required in names, required
    assert not any(n.startswith(("tests/", "benchmarks/")) for n in names)
    meta = {n.rsplit("/", 1)[1]: n for n in names if ".dist-info/" in n}
    entry_points = zipfile.ZipFile(wheel).read(meta["entry_points.txt"]).decode()
    assert "anyssl = anyssl.cli.app:main" in entry_points
    assert "[anyssl.plugins]" in entry_points and "image = anyssl.modalities.image" in entry_points
    assert "image-text = anyssl.modalities.image_text" in entry_points


def test_installed_packages_import_from_anywhere(tmp_path: Path) -> None:
    code = ("import anyssl.modalities.image, anyssl.cli.app, anyssl; "
            "import importlib.util as u; "
            "print(u.find_spec('cli') is None and u.find_spec('modalities') is None, "
            "sorted(anyssl.MODALITIES.names()))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True,
                         capture_output=True, text=True).stdout
    assert out.strip().startswith("True"), out
    assert "'image'" in out


def test_core_imports_no_modality_library(tmp_path: Path) -> None:
    code = ("import sys, anyssl, anyssl.api, anyssl.build, anyssl.train, anyssl.eval; "
            "bad = [m for m in ('torchvision', 'torch_geometric', 'tsaug', 'PIL', 'tokenizers') "
            "if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True,
                         capture_output=True, text=True).stdout
    assert out.strip() == "[]", out
