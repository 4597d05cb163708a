"""Plugins on the command line: an installed plugin that raises is named in one warning and
breaks no other command; ``--plugin`` finds modules in the current folder or by path (for
``train``, ``eval``, ``embed`` and ``list``); a crash in plugin code shows its traceback while
anyssl's own input checks stay one line (``--debug`` shows every traceback)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from cli_helpers import TINY
from typer.testing import CliRunner

from anyssl import registry_plugins as plugins
from anyssl.cli.app import app
from anyssl.cli.errors import missing_module_message
from anyssl.cli.train import _quiet
from anyssl.registry import AUGMENTATIONS, ENCODERS, METHODS

BROKEN = "raise KeyError('boom')\n"
AUGS = """
from anyssl.registry import AUGMENTATIONS

@AUGMENTATIONS.register("{name}", scope="image")
def my_flip(p: float = 0.5):
    '''Flip, from a plugin module.'''
    return None
"""
BOOM_ENCODER = """
from torch import nn
from anyssl.registry import ENCODERS

@ENCODERS.register("boom_enc", scope="image")
class Boom(nn.Module):
    '''An encoder whose forward has a bug.'''

    def __init__(self, **kwargs):
        super().__init__()
        self.out_dim = 8
        self.lin = nn.Linear(1, 8)

    def forward(self, x):
        return {}["missing"]  # KeyError inside plugin code
"""


def fake_distribution(site: Path, name: str, source: str) -> None:
    """An installed distribution ``name`` whose ``anyssl.plugins`` entry point is module
    ``name`` (found on PYTHONPATH=site, as pip would leave it)."""
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[anyssl.plugins]\n{name} = {name}\n")
    (site / f"{name}.py").write_text(source)


def anyssl(*args: str, cwd: Path, site: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The installed ``anyssl`` console script (not ``python -m``: no current folder on
    sys.path), with its own cache folder."""
    env = {**os.environ, "XDG_CACHE_HOME": str(cwd / ".cache"), "PYTHONPATH": str(site or "")}
    env.pop("ANYSSL_NO_CACHE", None)
    script = Path(sys.executable).with_name("anyssl")
    return subprocess.run([str(script), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """In-process runs whose plugins leave no trace in the shared registries."""
    plugins.load_plugins()  # first, so that what loads then stays registered after the test
    for registry in (AUGMENTATIONS, ENCODERS, METHODS):
        monkeypatch.setattr(registry, "_entries", dict(registry._entries))
    monkeypatch.setattr(plugins, "user_plugins", [])
    monkeypatch.setenv("ANYSSL_DEBUG", "0")  # restored after --debug sets it
    monkeypatch.setenv("ANYSSL_NO_CACHE", "1")
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith("cli_plugin_"):
            del sys.modules[name]


def test_a_broken_installed_plugin_is_one_warning_and_list_still_works(tmp_path: Path) -> None:
    fake_distribution(tmp_path / "site", "brokenplug", BROKEN)
    warning = ("warning: anyssl plugin 'brokenplug' (brokenplug) raised KeyError: 'boom' on "
               "import and is skipped (ANYSSL_DEBUG=1 shows the traceback)")
    for _ in ("cold cache", "warm cache"):
        proc = anyssl("list", "modalities", cwd=tmp_path, site=tmp_path / "site")
        assert proc.returncode == 0, proc.stderr
        assert "  image " in proc.stdout
        assert proc.stderr.splitlines() == [warning]


def test_a_broken_plugin_s_modality_says_why_it_is_missing(tmp_path: Path) -> None:
    fake_distribution(tmp_path / "site", "brokenplug", BROKEN)
    proc = anyssl("train", "--modality", "brokenplug", "--out", str(tmp_path / "run"),
                  cwd=tmp_path, site=tmp_path / "site")
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-1] == (
        "error: modality 'brokenplug' is not available: its plugin (entry point 'brokenplug' "
        "= brokenplug) raised KeyError: 'boom' on import; fix or uninstall it (ANYSSL_DEBUG=1 "
        "shows the traceback)")
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_an_image_run_works_with_a_broken_plugin_installed(tmp_path: Path) -> None:
    fake_distribution(tmp_path / "site", "brokenplug", BROKEN)
    proc = anyssl("train", "--modality", "image", "--method", "simclr", *TINY, "--no-eval",
                  "--out", str(tmp_path / "run"), cwd=tmp_path, site=tmp_path / "site")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "run" / "last.pt").is_file()


def test_plugin_module_in_the_current_folder_works_from_the_console_script(
        tmp_path: Path) -> None:
    (tmp_path / "my_augs.py").write_text(AUGS.format(name="my_flip"))
    proc = anyssl("list", "augmentations", "--modality", "image", "--plugin", "my_augs",
                  cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^  my_flip +image +Flip, from a plugin module\.$", proc.stdout, re.M)
    assert not (tmp_path / ".cache" / "anyssl").exists()  # a --plugin listing is not cached


def test_plugin_path_to_a_py_file_and_a_duplicate_name(tmp_path: Path, isolated: None) -> None:
    (tmp_path / "cli_plugin_augs.py").write_text(AUGS.format(name="path_flip"))
    result = CliRunner().invoke(app, ["list", "augmentations", "--plugin",
                                      str(tmp_path / "cli_plugin_augs.py")])
    assert result.exit_code == 0, result.output
    assert "path_flip" in result.output
    (tmp_path / "cli_plugin_dup.py").write_text(
        "from anyssl.registry import METHODS\nMETHODS.add('simclr', object)\n")
    result = CliRunner().invoke(app, ["list", "--plugin", str(tmp_path / "cli_plugin_dup.py")])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: method 'simclr' is already registered by module anyssl.methods.simclr; "
        "registers it again in module cli_plugin_dup: rename one, or pass override=True to "
        "replace it")


def test_a_crash_in_plugin_code_shows_its_traceback_an_input_check_one_line(
        tmp_path: Path, isolated: None) -> None:
    (tmp_path / "cli_plugin_boom.py").write_text(BOOM_ENCODER)
    args = ["train", "--modality", "image", "--method", "simclr", *TINY, "--no-eval",
            "--plugin", str(tmp_path / "cli_plugin_boom.py"), "--out", str(tmp_path / "run")]
    result = CliRunner().invoke(app, [*args, "--encoder", "boom_enc"])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, KeyError)  # propagates: Python prints the traceback
    result = CliRunner().invoke(app, [*args[:-2], "--method", "nosuch"])
    assert result.exit_code == 2
    assert result.output.startswith("error: unknown method 'nosuch'")
    assert len(result.output.strip().splitlines()) == 1
    result = CliRunner().invoke(app, [*args[:-2], "--method", "nosuch", "--debug"])
    assert result.exit_code == 1 and isinstance(result.exception, ValueError)


@pytest.mark.parametrize("command", [["eval", "knn"], ["embed", "--out", "x.npy"],
                                     ["export", "--out", "x.pt"], ["report"]])
def test_eval_embed_export_report_take_plugin_modules(command: list[str], tmp_path: Path,
                                            isolated: None) -> None:
    result = CliRunner().invoke(app, [*command, str(tmp_path / "none.pt"),
                                      "--plugin", "cli_plugin_no_such_module"])
    assert result.exit_code == 2
    assert result.output.startswith("error: cannot import plugin module "
                                    "'cli_plugin_no_such_module'")


def test_a_missing_module_names_the_extra_only_when_anyssl_has_one() -> None:
    err = ModuleNotFoundError("No module named 'torch_geometric'", name="torch_geometric")
    assert missing_module_message(err) == (
        "module 'torch_geometric' is not installed; pip install 'anyssl[graph]'")
    err = ModuleNotFoundError("No module named 'sonarlib'", name="sonarlib")
    assert missing_module_message(err) == (
        "module 'sonarlib' is not installed; install the package that provides it and retry")


def test_other_ranks_exit_quietly_on_input_checks_and_show_crashes() -> None:
    from anyssl.registry import METHODS as methods

    with pytest.raises(typer.Exit) as stop, _quiet():
        methods.get("nosuch")  # raised by anyssl's check
    assert stop.value.exit_code == 2
    with pytest.raises(KeyError), _quiet():
        raise KeyError("a crash outside anyssl")
