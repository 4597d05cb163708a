"""CLI start-up: ``--help``, ``--version`` and ``list`` import no torch once the registry listing
is cached, list exactly what a full load lists, and the help names what is installed and each
option's effective default. (Speed itself is measured by benchmarks/startup.py.)"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from cli_helpers import run_cli

from anyssl.cli.app import COMMANDS, load_command
from anyssl.train.config import DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS, TrainConfig

#: Runs the CLI in a fresh process, then reports on stderr which heavy modules it imported.
RUN = """
import sys
from anyssl.cli.app import main
sys.argv = ["anyssl", *sys.argv[1:]]
try:
    main()
except SystemExit as exit:
    code = exit.code
heavy = [m for m in ("torch", "numpy", "sklearn", "torchvision", "torch_geometric")
         if m in sys.modules]
print("IMPORTED", ",".join(heavy) or "-", file=sys.stderr)
sys.exit(code)
"""


def anyssl(*args: str, cache: Path, no_cache: bool = False) -> tuple[str, str, str]:
    """``anyssl *args`` in a fresh process: (stdout, stderr without the report, heavy modules)."""
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "COLUMNS": "200"}
    env.pop("ANYSSL_NO_CACHE", None)
    if no_cache:
        env["ANYSSL_NO_CACHE"] = "1"
    proc = subprocess.run([sys.executable, "-c", RUN, *args], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    err, _, imported = proc.stderr.rpartition("IMPORTED ")
    return proc.stdout, err, imported.strip()


@pytest.fixture(scope="module")
def warm_cache(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A cache written by a first ``anyssl list`` (a full load), and that listing."""
    cache = tmp_path_factory.mktemp("cache")
    listing, _, imported = anyssl("list", cache=cache)
    assert "torch" in imported.split(",")  # the first listing loads everything ...
    assert list((cache / "anyssl").glob("registry-*.json"))  # ... and caches it
    return cache, listing


def test_list_from_the_cache_is_the_full_listing_and_imports_no_torch(
        warm_cache: tuple[Path, str], tmp_path: Path) -> None:
    cache, first = warm_cache
    listing, _, imported = anyssl("list", cache=cache)
    assert imported == "-"
    uncached, _, _ = anyssl("list", cache=tmp_path, no_cache=True)
    assert listing == first == uncached
    assert not (tmp_path / "anyssl").exists()  # ANYSSL_NO_CACHE writes nothing
    for name in ("simclr", "mocov2", "image", "graph", "ts2vec"):
        assert re.search(rf"^  {name} ", listing, re.M), name


def test_help_names_the_installed_modalities_and_methods_without_torch(
        warm_cache: tuple[Path, str]) -> None:
    cache, listing = warm_cache
    text, _, imported = anyssl("--help", cache=cache)
    assert imported == "-"
    modalities = listing.split("methods:")[0].split("modalities:")[1]
    names = [line.split()[0] for line in modalities.strip().splitlines()]
    assert f"Modalities: {', '.join(sorted(names))}." in text
    assert re.search(r"Methods: barlowtwins, byol, .*simclr.*; graph: dgi, .*grace", text)
    for command in COMMANDS:
        assert re.search(rf"│ {command} ", text), command
    assert "--version" in text and "--debug" in text


def test_version_prints_the_installed_version(warm_cache: tuple[Path, str]) -> None:
    text, _, imported = anyssl("--version", cache=warm_cache[0])
    assert text.strip() == f"anyssl {version('anyssl')}"
    assert imported == "-"


def test_train_help_shows_each_default_as_the_run_resolves_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    code, text = run_cli("train", "--help")
    assert code == 0
    text = " ".join(text.replace("│", " ").split())
    config = TrainConfig()
    shown = {"--modality": config.modality, "--method": config.method, "--seed": config.seed,
             "--device": config.device}
    for flag, value in shown.items():
        assert re.search(rf"{flag} .*?\[default: \(?{value}\)?\]", text), flag
    assert f"the dataset's suggestion, else {DEFAULT_EPOCHS}" in text
    assert f"else {DEFAULT_BATCH_SIZE})" in text
    assert re.search(r"--modality .*Installed: .*image", text)
    assert re.search(r"--method .*Installed: .*mocov2", text)
    assert "--debug" in text and "current folder" in text  # --plugin says where it looks


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_in_the_table_loads_with_debug_and_plugin(name: str) -> None:
    cmd = load_command(name)
    assert cmd.name == name
    subcommands = list(getattr(cmd, "commands", {}).values()) or [cmd]
    for sub in subcommands:
        options = {opt for p in sub.params for opt in p.opts}
        assert "--debug" in options, sub.name
        if name in ("train", "eval", "embed", "list"):
            assert "--plugin" in options, sub.name


def test_a_mistyped_command_gets_a_suggestion() -> None:
    code, text = run_cli("lsit")
    assert code == 2 and "Did you mean 'list'?" in text
