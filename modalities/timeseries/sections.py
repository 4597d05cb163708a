"""The training split as TS2Vec pre-trains on it: long series cut into sections, variable-length
series centred.

Yue et al. 2022 (TS2Vec), ``ts2vec.py`` ``TS2Vec.fit`` of yuezhihan/ts2vec (commit b0088e1),
lines 77-86, before any training step:

* ``sections = T // max_train_length``; when it is at least 2 the series are cut into that
  many sections along time with ``split_with_nan`` (``utils.py`` lines 39-45:
  ``np.array_split``, each section NaN-padded at its end to the first one's length) and the
  sections are stacked as new series (section-major: every series' first section, then every
  second one ...); ``max_train_length`` is 3000 by default (``train.py`` line 33);
* when some series is NaN at the first or the last time step, every series is centred on its
  valid span with ``centerize_vary_length_series`` (``utils.py`` lines 51-58);
* series with no observed value are dropped.

Only pre-training sees this; evaluation encodes each whole series as TS2Vec's ``encode``
does. A section still longer than ``max_train_length`` (``T`` between 1x and 2x of it per
section) is cut to a random window of ``max_train_length`` steps per batch in ``fit`` (lines
109-111): that per-batch window belongs to the method's crops, not to the data set.
"""

from __future__ import annotations

import torch
from torch import Tensor

from anyssl.modalities.timeseries.series import check_series, valid_steps

__all__ = ["MAX_TRAIN_LENGTH", "centerize", "split_with_nan", "training_sections"]

#: TS2Vec's default ``max_train_length`` (``train.py`` line 33, ``--max-train-length``).
MAX_TRAIN_LENGTH = 3000


def split_with_nan(x: Tensor, sections: int) -> Tensor:
    """Cut every series into ``sections`` parts along time (``np.array_split`` sizes: the first
    ``T % sections`` parts one step longer), NaN-pad each to the first part's length and stack
    them section-major, as TS2Vec's ``split_with_nan`` + ``np.concatenate(..., axis=0)``.

    Shape: ``N x C x T`` -> ``(sections * N) x C x ceil(T / sections)``.
    """
    if sections < 1:
        raise ValueError(f"sections must be >= 1, got {sections}")
    parts = torch.tensor_split(x, sections, dim=-1)
    target = parts[0].shape[-1]
    padded = [torch.nn.functional.pad(p, (0, target - p.shape[-1]), value=float("nan"))
              for p in parts]
    return torch.cat(padded, dim=0)


def centerize(x: Tensor) -> Tensor:
    """Shift every series so its valid span sits in the middle of the time line, as TS2Vec's
    ``centerize_vary_length_series``: by ``(lead + trail) // 2 - lead`` steps, where ``lead`` /
    ``trail`` count the steps before the first / after the last valid step, wrapping around.

    Shape: ``N x C x T`` -> ``N x C x T``.
    """
    valid = valid_steps(x)  # N x T
    t = x.shape[-1]
    lead = valid.int().argmax(dim=1)  # N: first valid step (0 when none)
    trail = valid.flip(1).int().argmax(dim=1)  # N: steps after the last valid one
    offset = ((lead + trail) // 2 - lead) % t  # N, in [0, T)
    cols = (torch.arange(t, device=x.device) - offset[:, None]) % t  # N x T source steps
    return x.gather(2, cols[:, None, :].expand(-1, x.shape[1], -1))


def training_sections(x: Tensor, max_train_length: int | None = MAX_TRAIN_LENGTH) -> Tensor:
    """TS2Vec's ``fit`` preprocessing of the training series (see the module docstring):
    split when ``T // max_train_length >= 2`` (``None`` or 0: never), centre when a series is
    NaN at either end, drop series with no observed value.

    Shape: ``N x C x T`` -> ``M x C x T'`` (``M = N * sections`` less the empty ones); ``x``
    itself when nothing applies.
    """
    x = check_series(x, "training_sections")
    if max_train_length is not None and max_train_length < 0:
        raise ValueError(f"max_train_length must be a positive number of steps or None, got "
                         f"{max_train_length}")
    if max_train_length and x.shape[-1] // max_train_length >= 2:
        x = split_with_nan(x, x.shape[-1] // max_train_length)
    valid = valid_steps(x)  # N x T
    if (~valid[:, 0]).any() or (~valid[:, -1]).any():  # TS2Vec's temporal_missing[0] / [-1]
        x = centerize(x)
        valid = valid_steps(x)
    keep = valid.any(dim=1)  # N: series with an observed value
    return x if bool(keep.all()) else x[keep]  # unchanged input comes back as itself
