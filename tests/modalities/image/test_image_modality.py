"""The registered image Modality: defaults, and the data path end to end on digits."""

from __future__ import annotations

import subprocess
import sys
from typing import cast

import torch
from torch.utils.data import DataLoader, Dataset

from anyssl.modality import Modality, get_modality
from anyssl.registry import DATASETS, ENCODERS
from anyssl.views import ViewGenerator, parse_spec


def test_image_modality_is_registered_with_its_defaults() -> None:
    m = get_modality("image")
    assert isinstance(m, Modality) and m.name == "image" and m.conv_encoder
    assert m.default_dataset in DATASETS.names("image")
    assert m.default_encoder in ENCODERS.names("image")
    assert (m.default_dataset, m.default_encoder) == ("digits", "smallcnn")


def test_digits_to_views_to_features() -> None:
    m = get_modality("image")
    ds = m.dataset(None, "train")
    enc = m.encoder(None, ds)
    assert enc.out_dim == 128
    x, y = next(iter(DataLoader(cast(Dataset, ds), batch_size=8, collate_fn=m.collate)))
    x, y = m.to_device((x, y), torch.device("cpu"), False)
    views = ViewGenerator([parse_spec(s, scope="image") for s in m.recipe("simclr", ds)])
    views.manual_seed(0)
    v1, v2 = views(x)
    assert v1.shape == v2.shape == (8, 1, 32, 32)
    feats = enc(torch.cat([v1, v2]))
    assert feats.shape == (16, 128) and torch.isfinite(feats).all()
    views.manual_seed(0)
    assert torch.equal(views(x)[0], v1)  # reseeding reproduces the views


def test_plugin_import_does_not_load_torchvision() -> None:
    code = ("import sys, anyssl.modalities.image; "
            "sys.exit(1 if 'torchvision' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0
