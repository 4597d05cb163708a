"""Normalization as TS2Vec's loaders do it (``normalize.py``) and its use by the datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.preprocessing import StandardScaler

from anyssl.modalities.timeseries import datasets as tsd
from anyssl.modalities.timeseries.io import SeriesArrays
from anyssl.modalities.timeseries.normalize import (
    UNNORMALIZED_UCR,
    apply_stats,
    fit_stats,
    resolve_normalize,
    ts2vec_mode,
    znormalize,
)

NAN = np.nan


# ---- transcriptions of yuezhihan/ts2vec datautils.py (data laid out N x T x C there) ---------
def ref_load_ucr_norm(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """load_UCR lines 72-75, for a set in the unnormalized list (train/test N x T)."""
    mean = np.nanmean(train)
    std = np.nanstd(train)
    return (train - mean) / std, (test - mean) / std


def ref_load_uea_norm(train_X: np.ndarray, test_X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """load_UEA lines 96-99 (train_X / test_X N x T x C)."""
    scaler = StandardScaler()
    scaler.fit(train_X.reshape(-1, train_X.shape[-1]))
    train_X = scaler.transform(train_X.reshape(-1, train_X.shape[-1])).reshape(train_X.shape)
    test_X = scaler.transform(test_X.reshape(-1, test_X.shape[-1])).reshape(test_X.shape)
    return train_X, test_X


def _data(n: int, c: int, t: int, seed: int) -> np.ndarray:
    """N x C x T with per-channel offsets / scales and NaN right padding (variable lengths)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, c, t)) * rng.uniform(0.5, 20, size=(1, c, 1)) + rng.normal(
        0, 50, size=(1, c, 1))
    for i in range(n):
        x[i, :, rng.integers(t // 2, t + 1):] = NAN
    return x.astype(np.float32)


def _ts2vec_layout(x: np.ndarray) -> np.ndarray:
    return x.transpose(0, 2, 1).astype(np.float64)  # N x C x T -> N x T x C


def test_global_matches_ts2vec_load_ucr() -> None:
    train, test = _data(9, 1, 12, 0), _data(5, 1, 12, 1)
    ref_train, ref_test = ref_load_ucr_norm(train[:, 0].astype(np.float64),
                                            test[:, 0].astype(np.float64))
    stats = fit_stats(torch.from_numpy(train), "global")
    assert stats[0].shape == stats[1].shape == (1, 1, 1)
    for x, ref in ((train, ref_train), (test, ref_test)):
        got = apply_stats(torch.from_numpy(x), stats)[:, 0].numpy()
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
        assert np.array_equal(np.isnan(got), np.isnan(ref))


def test_channel_matches_ts2vec_load_uea_standard_scaler() -> None:
    train, test = _data(8, 3, 10, 2), _data(4, 3, 10, 3)
    ref_train, ref_test = ref_load_uea_norm(_ts2vec_layout(train), _ts2vec_layout(test))
    stats = fit_stats(torch.from_numpy(train), "channel")
    assert stats[0].shape == (1, 3, 1)
    for x, ref in ((train, ref_train), (test, ref_test)):
        got = apply_stats(torch.from_numpy(x), stats).numpy().transpose(0, 2, 1)
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
        assert np.array_equal(np.isnan(got), np.isnan(ref))


def test_constant_channel_is_centred_not_nan() -> None:
    x = torch.tensor([[[3.0, 3.0, NAN], [1.0, 2.0, 3.0]]])  # channel 0 constant
    out = apply_stats(x, fit_stats(x, "channel"))
    assert torch.equal(out[0, 0, :2], torch.zeros(2)) and torch.isnan(out[0, 0, 2])
    assert torch.isfinite(out[0, 1]).all()


def test_resolve_normalize_aliases_and_bad_input() -> None:
    assert [resolve_normalize(v) for v in ("zscore", True, False, None, "channel")] == [
        "series", "series", "none", "auto", "channel"]
    with pytest.raises(ValueError, match="unknown normalize 'minmax'; choose one of: auto, global"):
        resolve_normalize("minmax")
    with pytest.raises(ValueError, match="fit_stats takes mode 'global' or 'channel'"):
        fit_stats(torch.zeros(1, 1, 2), "series")


def test_ts2vec_mode_rule() -> None:
    assert len(UNNORMALIZED_UCR) == 34 and {"PigCVP", "Crop", "UMD"} <= UNNORMALIZED_UCR
    assert ts2vec_mode("PigCVP", 1)[0] == "global"
    assert ts2vec_mode("GunPoint", 1)[0] == "none"  # released z-normalized: kept
    assert ts2vec_mode("BasicMotions", 6)[0] == "channel"
    assert ts2vec_mode(None, 1)[0] == "global"  # unnamed raw data
    assert "load_UEA" in ts2vec_mode("X", 2)[1] and "load_UCR" in ts2vec_mode("Crop", 1)[1]


# ---- the datasets -----------------------------------------------------------------------------
def _arrays(x: np.ndarray, tag: str) -> SeriesArrays:
    return SeriesArrays(x, [str(i % 2) for i in range(len(x))], tag)


@pytest.mark.parametrize("name,channels,mode", [("PigCVP", 1, "global"),
                                                ("BasicMotions", 3, "channel")])
def test_statistics_come_from_the_training_split_only(name: str, channels: int,
                                                      mode: str) -> None:
    train = _data(6, channels, 8, 4)
    test_a, test_b = _data(4, channels, 8, 5), _data(4, channels, 8, 6) * 100 + 7
    runs = [{s: tsd.from_splits(_arrays(train, "tr"), _arrays(te, "te"), s, name=name)
             for s in ("train", "test")} for te in (test_a, test_b)]
    assert runs[0]["train"].normalize == runs[0]["test"].normalize == mode
    # another test split leaves the training split and the statistics as they were
    torch.testing.assert_close(runs[0]["train"].series, runs[1]["train"].series, equal_nan=True)
    expect = fit_stats(torch.from_numpy(train), mode)
    for run in runs:
        torch.testing.assert_close(run["test"].stats, expect)
    torch.testing.assert_close(runs[1]["test"].series,
                               apply_stats(torch.from_numpy(test_b), expect), equal_nan=True)
    assert "default, as TS2Vec" in runs[0]["train"].notes[0]


def test_modes_asked_for_and_the_old_series_zscore() -> None:
    train, test = _data(6, 2, 8, 7), _data(3, 2, 8, 8)
    kw: dict = {"name": "BasicMotions"}
    series = tsd.from_splits(_arrays(train, "tr"), _arrays(test, "te"), "test", "zscore", **kw)
    torch.testing.assert_close(series.series, znormalize(torch.from_numpy(test)), equal_nan=True)
    assert series.normalize == "series" and "TS2Vec would use channel" in series.notes[0]
    none = tsd.from_splits(_arrays(train, "tr"), _arrays(test, "te"), "test", False, **kw)
    torch.testing.assert_close(none.series, torch.from_numpy(test), equal_nan=True)
    glob = tsd.from_splits(_arrays(train, "tr"), _arrays(test, "te"), "test", "global", **kw)
    torch.testing.assert_close(
        glob.series, apply_stats(torch.from_numpy(test), fit_stats(torch.from_numpy(train),
                                                                   "global")), equal_nan=True)


def test_factories_default_to_ts2vec_choice(tmp_path: Path) -> None:
    assert tsd.gunpoint(split="train").normalize == "none"
    root = tmp_path / "PigCVP"
    root.mkdir()
    (root / "PigCVP_TRAIN.tsv").write_text("1\t10\t20\t30\n2\t40\t50\t60\n")
    (root / "PigCVP_TEST.tsv").write_text("1\t35\t35\t35\n")
    test = tsd.path(root=root, split="test")
    assert test.normalize == "global"  # by the folder's set name
    raw = np.array([10, 20, 30, 40, 50, 60], dtype=np.float64)
    expect = (35 - raw.mean()) / raw.std()
    torch.testing.assert_close(test.series, torch.full((1, 1, 3), expect, dtype=torch.float32))
    assert tsd.ucr("PigCVP", split="train", root=tmp_path).normalize == "global"
    np.savez(tmp_path / "raw.npz", X=np.arange(40.0).reshape(10, 4), y=np.arange(10) % 2)
    assert tsd.path(root=tmp_path / "raw.npz", split="train").normalize == "global"  # unnamed
