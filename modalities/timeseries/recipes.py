"""Default time-series view recipes, one per method.

- ``ts2vec``: TS2Vec's own views (Yue et al. 2022, sec. 3.2): two overlapping random crops with
  binomial timestamp masking (p = 0.5), made jointly by ``crops.OverlapCrops``.
- ``tstcc``: TS-TCC's weak/strong pair (Eldele et al. 2021, sec. 4.1): weak = scaling + jitter,
  strong = permutation of up to 5 segments + jitter. TS-TCC tunes the magnitudes per data set;
  these are fixed values for z-normalized series (one recipe for every data set).
- ``simclr`` (and every other method: ``mocov2``, ``byol`` ...): a strong symmetric pair from the
  time-series augmentation surveys (Um et al. 2017; Iwana & Uchida 2021): window slicing and
  time warping (each with p = 0.5), magnitude warping (p = 0.5), per-channel scaling and jitter.
"""

from __future__ import annotations

from typing import Any

from anyssl.modalities.timeseries.crops import OverlapCrops

__all__ = ["SIMCLR_VIEW", "TSTCC_STRONG", "TSTCC_WEAK", "timeseries_recipe"]

SIMCLR_VIEW = ("window_slice(ratio=0.9,p=0.5), time_warp(sigma=0.2,p=0.5), "
               "magnitude_warp(sigma=0.2,p=0.5), scale(sigma=0.1), jitter(sigma=0.03)")
TSTCC_WEAK = "scale(sigma=0.1), jitter(sigma=0.05)"
TSTCC_STRONG = "permute(max_segments=5), jitter(sigma=0.2)"


def timeseries_recipe(method: str, dataset: Any) -> Any:
    """The views of ``method``: ``OverlapCrops`` for ``ts2vec``, else one spec per view.

    Names are matched ignoring case, ``-`` and ``_``; unknown methods get the SimCLR pair.
    """
    key = method.lower().replace("-", "").replace("_", "")
    if key == "ts2vec":
        return OverlapCrops(min_length=2, mask_p=0.5)
    if key == "tstcc":
        return [TSTCC_WEAK, TSTCC_STRONG]
    return [SIMCLR_VIEW, SIMCLR_VIEW]
