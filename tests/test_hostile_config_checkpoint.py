"""Hostile configs and checkpoints through the CLI, table-driven: each case gives exit code 2 and
one line starting with ``error:`` that names the problem, no traceback, nothing executed, and
nothing already written lost (the files around it stay byte-identical, no new file appears)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from anyssl.cli.app import app
from anyssl.train.checkpoint import (
    CHECKPOINT_FORMAT,
    REQUIRED_KEYS,
    CheckpointError,
    CheckpointFormatError,
    check_format,
    load_checkpoint,
    save_checkpoint,
)
from anyssl.train.config import ConfigError, TrainConfig

#: A real run, as small as it gets: digits, an 8-wide CNN, two steps.
TINY = ["--modality", "image", "--method", "simclr", "--encoder", "smallcnn", "-e", "width=8",
        "--batch-size", "32", "--max-steps", "2", "--no-eval", "--seed", "0", "--device", "cpu"]
MARKER = "PWNED"  # a file the hostile payloads would create if anything executed them


def run_cli(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # an uncaught exception is a traceback for the user
    return result.exit_code, result.output


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def assert_refused(code: int, text: str, needles: list[str]) -> None:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert code == 2, text
    assert len(lines) == 1 and lines[0].startswith("error: "), text
    assert "Traceback" not in text
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"


@pytest.fixture(scope="module")
def good_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run folder (config.yaml, metrics.jsonl, last.pt)."""
    out = tmp_path_factory.mktemp("good") / "run"
    code, text = run_cli("train", *TINY, "--out", out)
    assert code == 0, text
    return out


# ---- configs -------------------------------------------------------------------------------------
#: Nine levels of nine aliases each: 9**9 (about 387 million) strings if it were expanded.
BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(c)}: &{chr(c)} [{', '.join([f'*{chr(c - 1)}'] * 9)}]\n" for c in range(98, 106))


@dataclass
class ConfigCase:
    id: str
    content: str | bytes | None  # None: the config path is a folder
    needles: list[str]


CONFIG_CASES = [
    ConfigCase("unknown-key", "epochz: 3\n", ["unknown config key 'epochz'",
                                             "did you mean 'epochs'", "c.yaml"]),
    ConfigCase("wrong-type-int", "epochs: ten\n", ["config key 'epochs' must be int",
                                                  "'ten' (str)"]),
    ConfigCase("wrong-type-float", "lr: [0.1]\n", ["config key 'lr' must be float"]),
    ConfigCase("wrong-type-dict", "method_args: 3\n", ["config key 'method_args' must be dict"]),
    ConfigCase("wrong-type-bool", "resume: yes please\n", ["config key 'resume' must be bool"]),
    ConfigCase("non-finite", "lr: .inf\n", ["config key 'lr' must be a finite number"]),
    ConfigCase("alias-bomb", BOMB, ["alias *a", "line 2", "memory bomb"]),
    ConfigCase("merge-key-alias", "base: &b {lr: 0.1}\n<<: *b\n", ["alias *b"]),
    ConfigCase("list-not-mapping", "- epochs\n- 3\n", ["must map keys to values, not a list"]),
    ConfigCase("scalar-not-mapping", "just some text\n", ["must map keys to values, not a str"]),
    ConfigCase("python-object-tag", f"method_args: !!python/object/apply:os.system ['touch "
               f"{MARKER}']\n", ["YAML tag '!!python/object/apply:os.system'", "plain values"]),
    ConfigCase("python-name-tag", "encoder: !!python/name:os.system\n",
               ["YAML tag '!!python/name:os.system'"]),
    ConfigCase("huge-file", "# " + "x" * 1_100_000 + "\nepochs: 1\n", ["over 1 MB"]),
    ConfigCase("duplicate-key", "lr: 0.1\nlr: 0.2\n", ["key 'lr' twice"]),
    ConfigCase("invalid-yaml", "epochs: [1,\n", ["not valid YAML"]),
    ConfigCase("binary-file", bytes(range(256)) * 8, ["not UTF-8"]),
    ConfigCase("deep-nesting", "a: " + "[" * 20_000 + "]" * 20_000 + "\n", ["nested too deeply"]),
    ConfigCase("folder", None, ["is a folder"]),
]


@pytest.mark.parametrize("case", CONFIG_CASES, ids=[c.id for c in CONFIG_CASES])
def test_hostile_config(case: ConfigCase, good_run: Path, tmp_path: Path,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    """``train --config BAD --resume`` on a finished run: refused before anything is touched."""
    monkeypatch.chdir(tmp_path)  # where a payload that ran would drop its marker
    run = shutil.copytree(good_run, tmp_path / "run")
    cfg = tmp_path / "c.yaml"
    if case.content is None:
        cfg.mkdir()
    elif isinstance(case.content, bytes):
        cfg.write_bytes(case.content)
    else:
        cfg.write_text(case.content)
    before, start = snapshot(tmp_path), time.perf_counter()
    code, text = run_cli("train", *TINY, "--config", cfg, "--out", run, "--resume")
    assert time.perf_counter() - start < 10  # refused, not expanded or parsed to exhaustion
    assert_refused(code, text, case.needles)
    assert snapshot(tmp_path) == before  # nothing lost, nothing new (no marker)


#: The same bomb on one line, for a ``key=value`` flag.
FLOW_BOMB = "[&a [" + ", ".join(["lol"] * 9) + "], " + ", ".join(
    f"&{chr(c)} [{', '.join([f'*{chr(c - 1)}'] * 9)}]" for c in range(98, 106)) + "]"


@pytest.mark.parametrize(("flag", "needles"), [
    (["-e", "width=[1,"], ["not valid YAML"]),
    (["-m", f"x={FLOW_BOMB}"], ["argument 'x'", "alias *a", "memory bomb"]),
    (["-d", "x=!!python/object/apply:os.system ['touch PWNED']"], ["python/object/apply"]),
], ids=["invalid-yaml", "alias-bomb", "python-tag"])
def test_hostile_key_value_flags(flag: list[str], needles: list[str], good_run: Path,
                                 tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    run = shutil.copytree(good_run, tmp_path / "run")
    before, start = snapshot(tmp_path), time.perf_counter()
    code, text = run_cli("train", *TINY, *flag, "--out", run, "--resume")
    assert time.perf_counter() - start < 10
    assert_refused(code, text, needles)
    assert snapshot(tmp_path) == before


def test_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    (tmp_path / "bomb.yaml").write_text(BOMB)  # 9**9 ~ 387 million strings if expanded
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=r"alias \*a \(line 2\)"):
        TrainConfig.from_yaml(tmp_path / "bomb.yaml")
    assert time.perf_counter() - start < 0.5


def test_anchors_without_aliases_and_plain_values_still_load(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text("lr: &x 0.5\nviews: [crop, flip]\nmethod_args: {t: 1}\n")
    cfg = TrainConfig.from_yaml(tmp_path / "ok.yaml")
    assert (cfg.lr, cfg.views, cfg.method_args) == (0.5, ["crop", "flip"], {"t": 1})
    (tmp_path / "bom.yaml").write_bytes(b"\xef\xbb\xbfepochs: 2\n")  # UTF-8 with a BOM
    assert TrainConfig.from_yaml(tmp_path / "bom.yaml").epochs == 2


# ---- checkpoints ---------------------------------------------------------------------------------
class Payload:
    """Unpickling this runs a shell command: what a weights-only load must never do."""

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, (f"touch {MARKER}",)


class Custom:
    """An ordinary custom object, which anyssl never writes into a checkpoint."""

    value = 3


def _edit(**changes: Any) -> Callable[[dict[str, Any], Path], None]:
    def make(state: dict[str, Any], dest: Path) -> None:
        new = {**state, **changes}
        for key in [k for k, v in changes.items() if v is _DROP]:
            del new[key]
        torch.save(new, dest)
    return make


def _raw(data: Callable[[bytes], bytes]) -> Callable[[dict[str, Any], Path], None]:
    def make(state: dict[str, Any], dest: Path) -> None:
        tmp = dest.with_suffix(".good")
        torch.save(state, tmp)
        dest.write_bytes(data(tmp.read_bytes()))
        tmp.unlink()
    return make


_DROP = object()


def _shared_reference_bomb(state: dict[str, Any], dest: Path) -> None:
    """A config whose lists share references: a small file, 9**9 values if copied out."""
    nest: Any = ["lol"] * 9
    for _ in range(8):
        nest = [nest] * 9
    torch.save({**state, "config": {**state["config"], "method_args": {"x": nest}}}, dest)


@dataclass
class CkptCase:
    id: str
    make: Callable[[dict[str, Any], Path], None]  # (a good checkpoint's state, where to write)
    needles: list[str]
    commands: tuple[str, ...] = ("eval-linear", "embed", "train-resume")


CKPT_CASES = [
    CkptCase("newer-anyssl", _edit(format=CHECKPOINT_FORMAT + 1, anyssl_version="99.0"),
             ["written by anyssl 99.0", f"(checkpoint format {CHECKPOINT_FORMAT + 1})",
              f"reads format {CHECKPOINT_FORMAT}", "upgrade anyssl"]),
    CkptCase("pickled-payload", _edit(extra=Payload()),
             ["holds pickled Python objects that anyssl will not execute", "system",
              "not written by anyssl (or was tampered with)"]),
    CkptCase("pickled-custom-object", _edit(extra=Custom()),
             ["holds pickled Python objects", "Custom"]),
    CkptCase("pickled-function", _edit(hook=shutil.rmtree),
             ["holds pickled Python objects", "shutil.rmtree"]),
    CkptCase("truncated", _raw(lambda b: b[: len(b) // 2]),
             ["unreadable (corrupt or truncated?)"]),
    CkptCase("zero-bytes", _raw(lambda b: b""), ["is empty (0 bytes)"]),
    CkptCase("text-file", _raw(lambda b: b"format: 1\nthis is not a checkpoint\n"),
             ["unreadable (corrupt or truncated?)", "not the zip archive"]),
    CkptCase("not-a-dict", lambda s, d: torch.save([1, 2, 3], d), ["holds a list, not a dict"]),
    CkptCase("shared-reference-bomb", _shared_reference_bomb, ["over 100000 values"],
             commands=("eval-linear", "embed")),  # resume reads weights, not the saved config
    CkptCase("no-format", _edit(format=_DROP), ["no integer 'format'"]),
    CkptCase("older-format", _edit(format=CHECKPOINT_FORMAT - 1),
             [f"checkpoint format {CHECKPOINT_FORMAT - 1}", "train again"]),
    CkptCase("missing-keys", _edit(method=_DROP), ["lacks 'method'"]),
]

COMMANDS: dict[str, Callable[[Path, Path], list[str | Path]]] = {
    "eval-linear": lambda ckpt, work: ["eval", "linear", ckpt, "--device", "cpu",
                                       "--out", work / "report.json"],
    "embed": lambda ckpt, work: ["embed", ckpt, "--out", work / "feats.npy", "--device", "cpu"],
    "train-resume": lambda ckpt, work: ["train", *TINY, "--out", ckpt.parent, "--resume"],
}


def _ckpt_params() -> list[Any]:
    out = []
    for case in CKPT_CASES:
        for name in case.commands:
            out.append(pytest.param(case, name, id=f"{case.id}-{name}"))
    return out


@pytest.mark.parametrize(("case", "command"), _ckpt_params())
def test_hostile_checkpoint(case: CkptCase, command: str, good_run: Path, tmp_path: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The bad file is the ``last.pt`` of a copy of a finished run: eval, embed and resume
    refuse it, execute nothing and change no file."""
    monkeypatch.chdir(tmp_path)
    run = shutil.copytree(good_run, tmp_path / "run")
    case.make(load_checkpoint(good_run / "last.pt"), run / "last.pt")
    before = snapshot(tmp_path)
    code, text = run_cli(*COMMANDS[command](run / "last.pt", tmp_path))
    assert_refused(code, text, case.needles)
    assert snapshot(tmp_path) == before


# ---- check_format: what the trainer and load_run call on a loaded checkpoint ---------------------
def test_check_format_accepts_what_the_trainer_writes(good_run: Path) -> None:
    state = load_checkpoint(good_run / "last.pt")
    check_format(state, good_run / "last.pt")
    assert state["anyssl_version"] == __import__("anyssl").__version__
    assert set(REQUIRED_KEYS) <= set(state)


@pytest.mark.parametrize(("change", "match"), [
    ({"format": None}, r"has no integer 'format' \(got None\)"),
    ({"format": True}, "no integer 'format'"),
    ({"format": "1"}, "no integer 'format'"),
    ({"format": CHECKPOINT_FORMAT + 1}, r"written by anyssl 7\.7 \(checkpoint format"),
    ({"format": CHECKPOINT_FORMAT - 1}, "use the anyssl that wrote it"),
    ({"step": "3"}, "'step' holds a str, expected int"),
    ({"step": True}, "'step' holds a bool"),
    ({"method": [1]}, "'method' holds a list, expected dict"),
])
def test_check_format_refusals(change: dict[str, Any], match: str, good_run: Path) -> None:
    state = {**load_checkpoint(good_run / "last.pt"), "anyssl_version": "7.7", **change}
    with pytest.raises(CheckpointError, match=match) as err:
        check_format(state, "x.pt")
    assert "\n" not in str(err.value) and "x.pt" in str(err.value)


def test_a_newer_checkpoint_is_refused_on_load_even_without_check_format(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "n.pt", {"format": CHECKPOINT_FORMAT + 3, "w": torch.ones(2)})
    with pytest.raises(CheckpointFormatError, match=r"written by anyssl .* upgrade anyssl"):
        load_checkpoint(tmp_path / "n.pt")
    with pytest.raises(CheckpointFormatError, match="a newer anyssl"):
        check_format({"format": CHECKPOINT_FORMAT + 3}, "n.pt")
    save_checkpoint(tmp_path / "plain.pt", {"w": torch.ones(2)})  # no format: loads as is
    assert torch.equal(load_checkpoint(tmp_path / "plain.pt")["w"], torch.ones(2))
