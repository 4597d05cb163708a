"""The audio data: a synthetic tone data set (offline, the modality's default), a folder of WAV
files (``--data DIR``), and the collate function that pads clips of different lengths.

A sample is ``(clip, label)``: ``clip`` a float tensor ``1 x T`` in [-1, 1] (mono), ``label``
an int (``-1`` when unknown). A batch is ``(clips B x 1 x T_max, labels B)``, zero-padded.
"""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

__all__ = ["SAMPLE_RATE", "Tones", "WavFolder", "pad_collate"]

#: Samples per second of the synthetic tones.
SAMPLE_RATE = 8000
#: The pitch of each class of ``Tones`` (Hz): four notes, A3 to C#5.
PITCHES = (220.0, 277.2, 329.6, 554.4)


class Tones(Dataset[tuple[Tensor, int]]):
    """Noisy sine tones, one pitch per class, of random phase, loudness and length
    (0.1-0.128 s at 8 kHz): an offline data set on which a minute of training beats random.

    The split decides the random stream, so train and test never share a clip.
    """

    def __init__(self, split: str = "train", seed: int = 0, n: int = 256) -> None:
        if split not in ("train", "test"):
            raise ValueError(f"split must be train or test, got {split!r}")
        # what the encoder needs at construction: the modality's encoders take in_channels
        self.encoder_kwargs: dict[str, Any] = {"in_channels": 1}
        self.num_classes = len(PITCHES)
        self.suggested_epochs = 5  # the run length when neither config nor modality sets one
        rng = np.random.default_rng([seed, 0 if split == "train" else 1])
        self.labels = rng.integers(0, len(PITCHES), n)
        self.clips = [self._tone(rng, PITCHES[k]) for k in self.labels]

    @staticmethod
    def _tone(rng: np.random.Generator, pitch: float) -> Tensor:
        length = int(rng.integers(800, 1025))
        t = np.arange(length) / SAMPLE_RATE
        wave_ = rng.uniform(0.3, 0.9) * np.sin(2 * np.pi * pitch * t + rng.uniform(0, 2 * np.pi))
        wave_ += 0.05 * rng.standard_normal(length)
        return torch.from_numpy(wave_.astype(np.float32)).unsqueeze(0)  # 1 x T

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.clips[index], int(self.labels[index])


class WavFolder(Dataset[tuple[Tensor, int]]):
    """``root/<class>/*.wav`` (16-bit PCM, mono or the first channel): one label per subfolder,
    in sorted order; a seeded ``test_fraction`` of each class is the test split."""

    def __init__(self, root: str, split: str = "train", seed: int = 0,
                 test_fraction: float = 0.25) -> None:
        self.encoder_kwargs: dict[str, Any] = {"in_channels": 1}
        folder = Path(root).expanduser()
        classes = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() \
            else []
        if not classes:
            raise ValueError(f"{root} holds no class folders of .wav files (root/<class>/*.wav)")
        self.num_classes = len(classes)
        rng = np.random.default_rng(seed)
        self.items: list[tuple[Path, int]] = []
        for label, name in enumerate(classes):
            files = sorted((folder / name).glob("*.wav"))
            n_test = round(test_fraction * len(files))
            test = set(rng.permutation(len(files))[:n_test].tolist())
            self.items += [(f, label) for i, f in enumerate(files) if (i in test) == (
                split == "test")]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        path, label = self.items[index]
        with wave.open(str(path), "rb") as f:
            if f.getsampwidth() != 2:
                raise ValueError(f"{path}: only 16-bit PCM WAV files are read")
            raw = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")
            raw = raw.reshape(-1, f.getnchannels())[:, 0]
        return torch.from_numpy(raw.astype(np.float32) / 32768.0).unsqueeze(0), label


def pad_collate(samples: list[Any]) -> tuple[Tensor, Tensor]:
    """Clips of different lengths -> ``(B x 1 x T_max zero-padded, labels B)``."""
    clips, labels = zip(*samples, strict=True)
    longest = max(c.shape[-1] for c in clips)
    batch = torch.zeros(len(clips), 1, longest)
    for i, c in enumerate(clips):
        batch[i, :, : c.shape[-1]] = c
    return batch, torch.tensor(labels, dtype=torch.long)
