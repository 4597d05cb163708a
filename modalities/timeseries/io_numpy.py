"""The numpy side of the series readers: checking ``X`` and ``y`` arrays loaded from ``.npy`` /
``.npz`` files (``io.read_numpy``) and ``y_{split}.npy`` files (``io.read_split``)."""

from __future__ import annotations

import numpy as np

from anyssl.modalities.timeseries.io import (
    MAX_LENGTH,
    SeriesFileError,
    canonical_label,
    check_label_kinds,
    check_shape,
    finish_series,
)

__all__ = ["numpy_labels", "numpy_x"]


def numpy_x(x: np.ndarray, src: str, max_length: int = MAX_LENGTH) -> np.ndarray:
    """``X`` of a numpy file (``N x T`` or time-major ``N x T x C``) as N x C x T float32,
    checked: numeric, non-empty, within ``max_length`` / ``MAX_CHANNELS``, no inf."""
    if x.ndim not in (2, 3) or x.dtype.kind not in "biuf" or len(x) == 0:
        raise SeriesFileError(f"{src}: X must be a non-empty numeric N x T or N x T x C array, "
                              f"got shape {x.shape} {x.dtype}")
    check_shape(x.shape[2] if x.ndim == 3 else 1, x.shape[1], src, max_length)
    x = x.astype(np.float32)
    x = x[:, None, :] if x.ndim == 2 else np.ascontiguousarray(x.transpose(0, 2, 1))
    if np.isinf(x).any():
        raise SeriesFileError(f"{src}: X holds infinite values; use NaN for a missing value")
    return finish_series(x, src)


def numpy_labels(y: np.ndarray | None, n: int, src: str) -> list[str] | None:
    """The label strings of ``y`` (shape ``(n,)``; float labels by value), or None."""
    if y is None:
        return None
    if y.ndim != 1 or len(y) != n:
        raise SeriesFileError(f"{src}: y must have shape ({n},) to match X, got {y.shape}")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        i = int(np.flatnonzero(~np.isfinite(y))[0])
        raise SeriesFileError(f"{src} series {i} (0-based): label {y[i]} is not a class label")
    labels = [canonical_label(str(v)) if y.dtype.kind == "f" else str(v) for v in y.tolist()]
    check_label_kinds(labels, src)
    return labels
