"""Default time-series view recipes, one per method.

- ``ts2vec``: TS2Vec's own views (Yue et al. 2022, sec. 3.2): two overlapping random crops with
  binomial timestamp masking (p = 0.5), made jointly by ``crops.OverlapCrops``.
- ``tstcc``: TS-TCC's weak/strong pair (Eldele et al. 2021, sec. 4.1): weak = scaling + jitter,
  strong = permutation of up to 5 segments + jitter. TS-TCC tunes the magnitudes per data set;
  these are fixed values for z-normalized series (one recipe for every data set).
- ``simclr`` (and every other method: ``mocov2``, ``byol``, ``simsiam``, ``barlowtwins``,
  ``vicreg``, ``mocov3``, ``nnclr`` ...): a strong symmetric pair from the time-series
  augmentation surveys (Um et al. 2017; Iwana & Uchida 2021): window slicing and time warping
  (each with p = 0.5), magnitude warping (p = 0.5), per-channel scaling and jitter.
- ``dino``, ``swav``: multi-crop (Caron et al. 2020, sec. 3.2; 2021, sec. 3.1): that pair as the
  2 global views, plus 6 local views: a short crop (``short_crop``) of a share U(size/4, size)
  of each series, size 0.4 (DINO's largest local crop scale, ``main_dino.py`` L115), then the
  pair's magnitude ops. ``--views 2+6x0.3`` sets the counts and the size (a share, 0-1].
"""

from __future__ import annotations

from typing import Any

from anyssl.modalities.timeseries import augment_local  # noqa: F401  (registers short_crop)
from anyssl.modalities.timeseries.crops import OverlapCrops
from anyssl.multicrop import MultiCrop

__all__ = ["LOCAL_SIZE", "SIMCLR_VIEW", "TSTCC_STRONG", "TSTCC_WEAK", "local_view",
           "timeseries_recipe"]

SIMCLR_VIEW = ("window_slice(ratio=0.9,p=0.5), time_warp(sigma=0.2,p=0.5), "
               "magnitude_warp(sigma=0.2,p=0.5), scale(sigma=0.1), jitter(sigma=0.03)")
TSTCC_WEAK = "scale(sigma=0.1), jitter(sigma=0.05)"
TSTCC_STRONG = "permute(max_segments=5), jitter(sigma=0.2)"
#: The largest share of a series a local view keeps (DINO's local crop scale 0.05-0.4).
LOCAL_SIZE = 0.4
N_LOCAL = 6  # SwAV's 6 local crops (README: --nmb_crops 2 6)


def local_view(size: Any) -> str:
    """The local view: a short crop of a share U(size/4, size) of each series, then the
    magnitude ops of the global pair."""
    share = float(size)
    if not 0.0 < share <= 1.0:
        raise ValueError(f"timeseries local views keep a share of each series in (0, 1], got "
                         f"{size!r} (e.g. --views 2+6x0.3)")
    return (f"short_crop(scale={share / 4:g}-{share:g}), magnitude_warp(sigma=0.2,p=0.5), "
            "scale(sigma=0.1), jitter(sigma=0.03)")


def timeseries_recipe(method: str, dataset: Any) -> Any:
    """The views of ``method``: ``OverlapCrops`` for ``ts2vec``, a ``MultiCrop`` for ``dino``
    and ``swav``, else one spec per view.

    Names are matched ignoring case, ``-`` and ``_``; unknown methods get the SimCLR pair.
    """
    key = method.lower().replace("-", "").replace("_", "")
    if key == "ts2vec":
        return OverlapCrops(min_length=2, mask_p=0.5,
                            max_length=getattr(dataset, "max_train_length", None))
    if key == "tstcc":
        return [TSTCC_WEAK, TSTCC_STRONG]
    if key in ("dino", "swav"):
        return MultiCrop((SIMCLR_VIEW, SIMCLR_VIEW), local_view, N_LOCAL, LOCAL_SIZE,
                         modality="timeseries")
    return [SIMCLR_VIEW, SIMCLR_VIEW]
