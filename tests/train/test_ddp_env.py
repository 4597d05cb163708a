"""torchrun's environment, devices per rank, the no-op paths of one process, and --sync-bn."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from train_toys import ToySet, make_method, toy_config

from anyssl.train import Trainer
from anyssl.train.ddp import (
    LaunchEnv,
    LaunchError,
    convert_sync_bn,
    launch_env,
    process_device,
    process_group,
    share_error,
)

TORCHRUN = {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": "29500"}


@pytest.fixture
def no_torchrun(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in TORCHRUN:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_launch_env_reads_torchrun_variables(no_torchrun: pytest.MonkeyPatch) -> None:
    assert launch_env() == LaunchEnv(0, 0, 1)  # no torchrun: one process
    for name, value in TORCHRUN.items():
        no_torchrun.setenv(name, value)
    assert launch_env() == LaunchEnv(rank=1, local_rank=1, world_size=2)


@pytest.mark.parametrize(("changes", "message"), [
    ({"RANK": "one"}, "RANK='one' is not an integer"),
    ({"RANK": "2"}, "RANK=2, LOCAL_RANK=1, WORLD_SIZE=2 do not fit together"),
    ({"MASTER_PORT": ""}, "WORLD_SIZE=2 but MASTER_PORT unset"),
])
def test_bad_torchrun_variables(no_torchrun: pytest.MonkeyPatch, changes: dict[str, str],
                                message: str) -> None:
    for name, value in {**TORCHRUN, **changes}.items():
        no_torchrun.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        launch_env()


def test_devices_per_rank() -> None:
    two = LaunchEnv(1, 1, 2)
    assert process_device(torch.device("cpu"), two) == torch.device("cpu")
    assert process_device(torch.device("cuda", 3), LaunchEnv()) == torch.device("cuda", 3)
    with pytest.raises(ValueError, match="under torchrun process LOCAL_RANK uses cuda:LOCAL_RANK"):
        process_device(torch.device("cuda", 1), two)


def test_one_process_needs_no_group(no_torchrun: pytest.MonkeyPatch) -> None:
    with process_group(torch.device("cpu"), LaunchEnv()) as created:
        assert not created and not torch.distributed.is_initialized()
    share_error(None)
    err = KeyError("x")
    with pytest.raises(KeyError):
        share_error(err)


def test_sync_bn_on_one_process_is_a_noted_no_op(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str],
                                                 no_torchrun: pytest.MonkeyPatch) -> None:
    t = Trainer(make_method(), ToySet(64), toy_config(tmp_path, max_steps=1, sync_bn=True),
                tmp_path, modality_name="toy")
    t.fit()
    assert "--sync-bn has no effect on one process" in capsys.readouterr().out
    assert not any(isinstance(m, nn.SyncBatchNorm) for m in t.method.modules())


def test_sync_bn_needs_cuda_with_several_processes() -> None:
    with pytest.raises(ValueError, match="--sync-bn needs CUDA devices"):
        convert_sync_bn(nn.BatchNorm1d(3), torch.device("cpu"), 2)


def test_launch_error_names_rank_and_cause() -> None:
    assert str(LaunchError(1, 2)) == "training process of rank 1 exited with 2"
    assert str(LaunchError(0, -9)) == "training process of rank 0 was killed by signal 9"
