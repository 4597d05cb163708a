"""The dual-encoder method is not image-text only: a user pairs two other modalities (here a
time series with a tabular view of it) from their own code, registers the pair as a modality
and trains ``clip`` on it through the same API, with retrieval evaluated on held-out pairs."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor, nn

from anyssl.api import evaluate_checkpoint, train
from anyssl.modalities.timeseries.datasets import gunpoint
from anyssl.modality import Modality, register_modality
from anyssl.pair import KeyedViews, PairEncoder
from anyssl.registry import DATASETS, ENCODERS, MODALITIES

NAME = "series-table"
N_WINDOWS = 10


class SeriesTable(torch.utils.data.Dataset[tuple[dict[str, Tensor], int]]):
    """GunPoint series paired with a tabular view: the means of 10 windows plus noise."""

    def __init__(self, split: str, seed: int = 0) -> None:
        base = gunpoint(split=split)
        self.series = base.series  # N x 1 x 150
        gen = torch.Generator().manual_seed(1 if split == "train" else 2)
        windows = self.series[:, 0].reshape(len(base), N_WINDOWS, -1).mean(dim=2)
        self.table = windows + 0.05 * torch.randn(windows.shape, generator=gen)  # N x 10
        self.targets = list(base.targets)
        self.num_classes = base.num_classes
        self.encoder_kwargs = {"in_channels": 1, "table_dim": N_WINDOWS}

    def __len__(self) -> int:
        return int(self.series.shape[0])

    def __getitem__(self, i: int) -> tuple[dict[str, Tensor], int]:
        return {"series": self.series[i], "table": self.table[i]}, int(self.targets[i])


class TableMLP(nn.Module):
    """A two-layer MLP on a feature vector: the 'tabular modality' tower."""

    def __init__(self, in_dim: int, out_dim: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, 64), nn.ReLU(), nn.Linear(64, out_dim))
        self.out_dim = out_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def _pair_encoder(in_channels: int, table_dim: int, **_: Any) -> PairEncoder:
    series = ENCODERS.build("dilated_conv", "timeseries", in_channels=in_channels,
                            hidden_dim=16, out_dim=32, depth=3)
    return PairEncoder({"series": series, "table": TableMLP(table_dim)}, primary="series")


def _recipe(method: str, dataset: Any) -> KeyedViews:
    return KeyedViews({"series": "jitter(sigma=0.02)", "table": None},
                      scopes={"series": "timeseries"})


@pytest.fixture(scope="module")
def pair_modality() -> Modality:
    import anyssl.modalities.timeseries  # noqa: F401  (registers dilated_conv and jitter)

    if NAME not in MODALITIES.names():
        DATASETS.add("gunpoint-table", SeriesTable, scope=NAME,
                     description="GunPoint with window means as a table")
        ENCODERS.add("series-mlp", _pair_encoder, scope=NAME,
                     description="dilated conv tower + MLP tower")
        register_modality(Modality(
            name=NAME, description="GunPoint series with a tabular view",
            default_dataset="gunpoint-table", default_encoder="series-mlp", recipe=_recipe,
            methods=("clip",), eval_protocols=("retrieval", "linear"),
        ))
    return MODALITIES.build(NAME)


def test_clip_trains_on_series_and_table(pair_modality: Modality, tmp_path: Any) -> None:
    result = train(modality=NAME, method="clip", epochs=40, batch_size=25, lr=3e-3,
                   warmup_epochs=0, out=str(tmp_path / "run"), seed=0,
                   method_args={"embed_dim": 32})
    report = result.eval
    assert report is not None
    pre, rnd = report["pretrained"]["retrieval"], report["random_init"]["retrieval"]
    # 150 held-out pairs: chance R@5 is 5/150 = 3.3%
    assert pre["chance_t2i_r5"] == pytest.approx(5 / 150)
    assert pre["t2i_r5"] > 5 * pre["chance_t2i_r5"]
    assert pre["i2t_r5"] > 5 * pre["chance_i2t_r5"]
    assert pre["t2i_r5"] > rnd["t2i_r5"] + 0.1
    assert "linear" in report["pretrained"]  # the primary (series) tower gets the core probe
    again = evaluate_checkpoint(result.checkpoint, ("retrieval",))
    assert again["pretrained"]["retrieval"] == pytest.approx(pre)
