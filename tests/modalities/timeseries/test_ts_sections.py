"""TS2Vec's pre-training sections (``sections.py``) and the datasets' ``pretrain_set``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from anyssl.modalities.timeseries import datasets as tsd
from anyssl.modalities.timeseries.io import SeriesArrays
from anyssl.modalities.timeseries.sections import centerize, split_with_nan, training_sections

NAN = np.nan


# ---- transcriptions of yuezhihan/ts2vec (data laid out N x T x C there) ----------------------
def ref_pad_nan_to_target(array: np.ndarray, target_length: int, axis: int = 0) -> np.ndarray:
    """utils.py lines 27-37 (both_side=False)."""
    pad_size = target_length - array.shape[axis]
    if pad_size <= 0:
        return array
    npad = [(0, 0)] * array.ndim
    npad[axis] = (0, pad_size)
    return np.pad(array, pad_width=npad, mode="constant", constant_values=np.nan)


def ref_split_with_nan(x: np.ndarray, sections: int, axis: int = 0) -> list[np.ndarray]:
    """utils.py lines 39-45."""
    arrs = np.array_split(x, sections, axis=axis)
    target_length = arrs[0].shape[axis]
    for i in range(len(arrs)):
        arrs[i] = ref_pad_nan_to_target(arrs[i], target_length, axis=axis)
    return arrs


def ref_centerize_vary_length_series(x: np.ndarray) -> np.ndarray:
    """utils.py lines 51-58."""
    prefix_zeros = np.argmax(~np.isnan(x).all(axis=-1), axis=1)
    suffix_zeros = np.argmax(~np.isnan(x[:, ::-1]).all(axis=-1), axis=1)
    offset = (prefix_zeros + suffix_zeros) // 2 - prefix_zeros
    rows, column_indices = np.ogrid[:x.shape[0], :x.shape[1]]
    offset[offset < 0] += x.shape[1]
    column_indices = column_indices - offset[:, np.newaxis]
    return x[rows, column_indices]


def ref_fit_preprocess(train_data: np.ndarray, max_train_length: int | None) -> np.ndarray:
    """ts2vec.py TS2Vec.fit lines 77-86."""
    if max_train_length is not None:
        sections = train_data.shape[1] // max_train_length
        if sections >= 2:
            train_data = np.concatenate(ref_split_with_nan(train_data, sections, axis=1), axis=0)
    temporal_missing = np.isnan(train_data).all(axis=-1).any(axis=0)
    if temporal_missing[0] or temporal_missing[-1]:
        train_data = ref_centerize_vary_length_series(train_data)
    return train_data[~np.isnan(train_data).all(axis=2).all(axis=1)]


def _ragged(n: int, c: int, t: int, seed: int, left: bool = False) -> np.ndarray:
    """N x C x T float32 with NaN right padding (and some left padding when ``left``)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, c, t)).astype(np.float32)
    for i in range(n):
        x[i, :, rng.integers(1, t + 1):] = NAN
        if left and i % 2:
            x[i, :, : rng.integers(0, 3)] = NAN
    return x


def _ours(x: np.ndarray) -> np.ndarray:
    return x.transpose(0, 2, 1)  # TS2Vec's N x T x C -> our N x C x T and back


@pytest.mark.parametrize("t,sections", [(10, 3), (9, 3), (7, 2), (5, 1)])
def test_split_with_nan_matches_reference(t: int, sections: int) -> None:
    x = _ragged(4, 2, t, t)
    ref = np.concatenate(ref_split_with_nan(_ours(x), sections, axis=1), axis=0)
    got = split_with_nan(torch.from_numpy(x), sections).numpy()
    assert got.shape == (4 * sections, 2, math.ceil(t / sections))
    np.testing.assert_array_equal(_ours(got), ref)  # NaN in the same places


def test_centerize_matches_reference() -> None:
    x = _ragged(6, 3, 9, 1, left=True)
    x[5] = NAN  # an all-NaN series stays where it is
    np.testing.assert_array_equal(_ours(centerize(torch.from_numpy(x)).numpy()),
                                  ref_centerize_vary_length_series(_ours(x)))


@pytest.mark.parametrize("t,max_len", [(12, 4), (12, 5), (12, 7), (12, None), (12, 0)])
def test_training_sections_match_ts2vec_fit(t: int, max_len: int | None) -> None:
    x = _ragged(5, 2, t, 2)
    x[3, :, : t // 2] = NAN  # one series empty in the first half: an all-NaN section
    ref = ref_fit_preprocess(_ours(x), max_len or None)
    np.testing.assert_array_equal(_ours(training_sections(torch.from_numpy(x), max_len).numpy()),
                                  ref)


def test_training_sections_return_equal_length_data_unchanged() -> None:
    x = torch.randn(3, 1, 8)
    assert training_sections(x, 3) is not x  # 8 // 3 = 2 sections
    assert training_sections(x, 5) is x and training_sections(x, None) is x
    with pytest.raises(ValueError, match="max_train_length must be a positive"):
        training_sections(x, -1)
    with pytest.raises(ValueError, match="sections must be >= 1"):
        split_with_nan(x, 0)


# ---- the datasets' pretrain_set ----------------------------------------------------------------
def _splits(x: np.ndarray) -> tuple[SeriesArrays, SeriesArrays]:
    labels = [str(i % 2) for i in range(len(x))]
    return SeriesArrays(x, labels, "A_TRAIN.ts"), SeriesArrays(x[:2], labels[:2], "A_TEST.ts")


def test_long_training_series_pretrain_in_sections_and_evaluate_whole() -> None:
    x = np.random.default_rng(3).normal(size=(16, 1, 70)).astype(np.float32)
    train = tsd.from_splits(*_splits(x), "train", "none", "A", max_train_length=30)
    test = tsd.from_splits(*_splits(x), "test", "none", "A", max_train_length=30)
    assert train.series.shape == (16, 1, 70) and len(train) == 16  # evaluation: whole series
    pre = train.pretrain_set
    assert pre is not None and pre.series.shape == (32, 1, 35)  # 70 // 30 = 2 sections
    assert torch.equal(pre.series[16:], train.series[:, :, 35:])
    assert pre.encoder_kwargs == train.encoder_kwargs == {"in_channels": 1, "length": 70}
    # TS2Vec's 200 iterations (16 * 70 values) in epochs of 32 // 8 = 4 steps
    assert train.suggested_epochs == pre.suggested_epochs == 50
    assert test.pretrain_set is None and any("pre-training on 32 series" in n for n in train.notes)
    off = tsd.from_splits(*_splits(x), "train", "none", "A", max_train_length=None)
    assert off.pretrain_set is None and off.suggested_epochs == 100


def test_variable_length_training_series_are_centred_for_pretraining() -> None:
    x = _ragged(8, 2, 10, 5)
    train = tsd.from_splits(*_splits(x), "train", "none", "A")
    assert train.pretrain_set is not None
    torch.testing.assert_close(train.series, torch.from_numpy(x), equal_nan=True)
    np.testing.assert_array_equal(_ours(train.pretrain_set.series.numpy()),
                                  ref_centerize_vary_length_series(_ours(x)))
