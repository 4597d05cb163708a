"""A checkpoint holding pickled objects is refused by the error's type, not torch's wording."""

from __future__ import annotations

import datetime
import pickle
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch

from anyssl.train import CheckpointError, load_checkpoint, save_checkpoint
from anyssl.train import checkpoint as ckpt_module
from anyssl.train.checkpoint import UnsafeCheckpointError

RAN: list[str] = []


class Arbitrary:
    """Any object anyssl never writes; unpickling it would run ``__setstate__``."""

    def __init__(self) -> None:
        self.value = 3

    def __setstate__(self, state: dict[str, Any]) -> None:
        RAN.append("setstate")
        self.__dict__.update(state)


@pytest.mark.parametrize(("obj", "named"), [
    (Arbitrary(), "Arbitrary"),
    (datetime.date(2020, 1, 1), "datetime.date"),
    (torch.nn.Linear(2, 2), "Linear"),
])
def test_a_checkpoint_holding_an_arbitrary_object_is_refused(
    obj: Any, named: str, tmp_path: Path,
) -> None:
    RAN.clear()
    torch.save({"format": 1, "w": torch.ones(2), "extra": obj}, tmp_path / "last.pt")
    with pytest.raises(UnsafeCheckpointError) as err:
        load_checkpoint(tmp_path / "last.pt")
    text = str(err.value)
    assert "holds pickled Python objects that anyssl will not execute" in text
    assert named in text and "\n" not in text
    assert RAN == []  # refused before anything of the object ran


def test_detection_does_not_depend_on_torchs_message(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A future torch that rewords its weights-only refusal is still an unsafe checkpoint."""
    save_checkpoint(tmp_path / "last.pt", {"w": torch.ones(2)})

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise pickle.UnpicklingError("the unpickler said no, in new words")

    monkeypatch.setattr(ckpt_module.torch, "load", refuse)
    with pytest.raises(UnsafeCheckpointError, match="will not execute; it was not written"):
        load_checkpoint(tmp_path / "last.pt")


def test_other_load_failures_are_unreadable_not_unsafe(tmp_path: Path) -> None:
    """A pickle cut short inside an intact archive is corrupt, not a pickled payload."""
    good = save_checkpoint(tmp_path / "good.pt", {"w": torch.ones(2), "step": 3})
    bad = tmp_path / "bad.pt"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            zout.writestr(info, data[: len(data) // 2] if info.filename.endswith("data.pkl")
                          else data)
    with pytest.raises(CheckpointError, match="unreadable") as err:
        load_checkpoint(bad)
    assert not isinstance(err.value, UnsafeCheckpointError)
