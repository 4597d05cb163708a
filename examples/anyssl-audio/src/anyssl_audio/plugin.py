"""The ``audio`` modality: what the ``anyssl.plugins`` entry point of this package calls.

``register()`` adds every part with ``scope="audio"`` (so the names cannot clash with another
modality's), the custom protocol, and the ``Modality`` itself. Nothing registers at import, so
tests can import the parts freely; calling ``register()`` twice is harmless.
"""

from __future__ import annotations

from typing import Any

from anyssl.eval import register_protocol
from anyssl.modality import Modality, register_modality
from anyssl.registry import AUGMENTATIONS, DATASETS, ENCODERS, MODALITIES
from anyssl_audio.data import Tones, WavFolder, pad_collate
from anyssl_audio.parts import Conv1dEncoder, Gain, Noise, Shift
from anyssl_audio.protocol import class_retrieval

__all__ = ["MODALITY", "audio_recipe", "register"]


def audio_recipe(method: str, dataset: Any) -> list[str]:
    """The views of every method: two views of one spec (shift, loudness, noise)."""
    return ["shift(max=0.25), gain(low=0.5,high=1.5), noise(sigma=0.05)"] * 2


MODALITY = Modality(
    name="audio",
    description="mono clips 1 x T (padded): synthetic tones or a folder of WAV files",
    default_dataset="tones",
    default_encoder="conv1d",
    recipe=audio_recipe,
    collate=pad_collate,  # clips differ in length: pad them to the longest of the batch
    methods=("simclr", "mocov2", "byol"),
    eval_protocols=("class_retrieval", "knn"),
    eval_options={"class_retrieval": {"k": 5}},
    method_defaults={"simclr": {"batch_size": 64, "optimizer": "adamw", "lr": 0.002,
                                "weight_decay": 1e-4}},
)


def register() -> None:
    """Register the audio modality and its parts (once)."""
    if "audio" in MODALITIES:
        return
    DATASETS.add("tones", Tones, scope="audio")
    DATASETS.add("path", WavFolder, scope="audio")  # --data DIR: root/<class>/*.wav
    ENCODERS.add("conv1d", Conv1dEncoder, scope="audio")
    for name, aug in (("gain", Gain), ("noise", Noise), ("shift", Shift)):
        AUGMENTATIONS.add(name, aug, scope="audio")
    register_protocol("class_retrieval", class_retrieval)
    register_modality(MODALITY)
