"""A run folder that holds a run is never written over: ``overwrite`` moves it aside to
``<out>.replaced-<UTC time>`` (nothing lost) and starts again; ``resume`` with ``overwrite`` is
refused; without either the old run stays untouched."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from train_toys import ToySet, make_method, toy_config

from anyssl.train import RunExistsError, Trainer, load_checkpoint
from anyssl.train.run_folder import move_aside


def fit(out: Path, **kw: Any) -> Trainer:
    t = Trainer(make_method(), ToySet(64), toy_config(out, **kw), out, modality_name="toy")
    t.fit()
    return t


def test_overwrite_moves_the_old_run_aside(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    fit(out, max_steps=2)
    old = (out / "last.pt").read_bytes()
    (out / "notes.txt").write_text("mine")
    capsys.readouterr()
    fit(out, max_steps=3, overwrite=True)
    moved = [p for p in tmp_path.iterdir() if p.name != "run"]
    assert len(moved) == 1 and re.fullmatch(r"run\.replaced-\d{8}T\d{6}Z", moved[0].name)
    assert (moved[0] / "last.pt").read_bytes() == old  # nothing lost
    assert (moved[0] / "notes.txt").read_text() == "mine"
    assert load_checkpoint(out / "last.pt")["step"] == 3 and not (out / "notes.txt").exists()
    assert f"was moved to {moved[0]}" in capsys.readouterr().out


def test_overwrite_of_an_empty_or_missing_folder_just_trains(tmp_path: Path) -> None:
    assert fit(tmp_path / "new", max_steps=1, overwrite=True).step == 1
    assert [p.name for p in tmp_path.iterdir()] == ["new"]


def test_without_overwrite_the_run_stays(tmp_path: Path) -> None:
    fit(tmp_path, max_steps=2)
    before = (tmp_path / "last.pt").read_bytes()
    with pytest.raises(RunExistsError, match="pass --resume to continue it, --overwrite to move "
                       "it aside and start again, or choose another --out"):
        fit(tmp_path, max_steps=2)
    assert (tmp_path / "last.pt").read_bytes() == before


def test_resume_with_overwrite_is_refused(tmp_path: Path) -> None:
    fit(tmp_path, max_steps=2)
    with pytest.raises(ValueError, match="--resume and --overwrite contradict each other"):
        fit(tmp_path, max_steps=3, resume=True, overwrite=True)
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 2


def test_overwrite_refuses_to_move_the_current_folder(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    fit(tmp_path, max_steps=1)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="the current folder is in it"):
        fit(tmp_path, max_steps=1, overwrite=True)


def test_move_aside_never_reuses_a_name(tmp_path: Path) -> None:
    names = set()
    for i in range(3):
        run = tmp_path / "r"
        run.mkdir()
        (run / "f").write_text(str(i))
        names.add(move_aside(run).name)
    assert len(names) == 3 and not (tmp_path / "r").exists()
