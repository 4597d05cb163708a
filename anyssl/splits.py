"""Train/test splits shared by the modalities' datasets."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["check_split", "split_indices"]


def check_split(split: str) -> str:
    """``"train"`` or ``"test"`` (``"val"`` is read as ``"test"``); anything else raises."""
    s = {"val": "test", "valid": "test", "validation": "test"}.get(split, split)
    if s not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}; use 'train' or 'test'")
    return s


def split_indices(labels: Sequence[int] | np.ndarray, test_fraction: float,
                  seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded split stratified by label: ``round(test_fraction * n_c)`` of each class (the
    unlabeled count as one class) go to test. Returns sorted ``(train, test)`` indices."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    y = np.asarray(labels)
    rng = np.random.default_rng(seed)
    test: list[np.ndarray] = []
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        test.append(members[: round(test_fraction * len(members))])
    test_idx = np.sort(np.concatenate(test)) if test else np.zeros(0, dtype=np.int64)
    train_idx = np.setdiff1d(np.arange(len(y)), test_idx)
    return train_idx, test_idx
