"""Time-series modality: UCR/UEA and array data, batched on-device augmentations, TS2Vec.

A batch is one float tensor ``N x C x T`` with ``NaN`` for missing values and right padding
(``series.py``). Importing this package registers, with ``scope="timeseries"``: the datasets
``gunpoint`` (default, shipped), ``path`` (``--data DIR_OR_FILE``) and ``ucr``
(``--data ucr:ArrowHead``), normalized as TS2Vec's loaders do (``-d normalize=``, see
``normalize.py``; long training series cut into sections, ``sections.py``); the native
augmentations (``jitter``, ``scale``, ``magnitude_warp``,
``time_warp``, ``window_slice``, ``permute``, ``time_mask``, ``channel_dropout``, ``crop`` ...)
and the tsaug wrappers (``tsaug_*``); the encoders ``dilated_conv`` (TS2Vec's, default),
``resnet1d`` and ``transformer``; the method ``ts2vec``; and the ``timeseries`` Modality, which
evaluates with TS2Vec's SVM protocol, the linear probe and kNN.
"""

from anyssl.modalities.timeseries import (  # noqa: F401  (importing registers the parts)
    augment,
    augment_warp,
    datasets,
    encoders,
    encoders_transformer,
    report,
    ts2vec,
    tsaug_augment,
)
from anyssl.modalities.timeseries.recipes import timeseries_recipe
from anyssl.modality import Modality, register_modality

MODALITY = register_modality(Modality(
    name="timeseries",
    description="series N x C x T (NaN = missing/padding): UCR/UEA, TS2Vec, warps and crops",
    default_dataset="gunpoint",
    default_encoder="dilated_conv",
    recipe=timeseries_recipe,
    eval_protocols=("svm", "linear", "knn"),
))

__all__ = ["MODALITY", "timeseries_recipe"]
