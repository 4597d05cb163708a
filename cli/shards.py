"""``anyssl shards SRC OUT --modality image|image-text``: write a dataset anyssl reads as
WebDataset shards (the format img2dataset writes) with a manifest, resumably.

The source is read through the modality's dataset resolution (a registered name such as
``digits`` or ``openmoji``, a folder, a manifest CSV/JSONL, IDX files, an ``.npz``), in index
order, so sample ``k`` always lands in shard ``k // shard_size`` under the key ``k`` (zero
padded). Each sample is the image at its stored square size (``--image-size``), encoded with
Pillow, and its label as ``cls``; image-text samples add their first caption as ``txt`` and all
captions, the label and its name as ``json``. A re-run skips the shards the manifest lists.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from anyssl.cli.errors import cli_errors
from anyssl.cli.listing import PluginOption, import_plugins

MODALITIES = ("image", "image-text")
#: Stored side of sources whose size the device would choose (image folders): a GPU run's.
FOLDER_IMAGE_SIZE = 256


class ImageFormat(str, Enum):
    """How the image member is encoded (png is lossless)."""

    jpg = "jpg"
    png = "png"
    webp = "webp"


class Split(str, Enum):
    """Which split of the source to write (``all``: train, then test)."""

    train = "train"
    test = "test"
    all = "all"


@dataclass
class Source:
    """The splits of a source to write, in order, and what the manifest says about them."""

    parts: list[Any]
    meta: dict[str, Any]
    resize: int | None  # resize the items to this square (the factory takes no image_size)

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts)

    def items(self, skip: Any) -> Iterator[tuple[int, Any, list[str] | None, int]]:
        """``(index, image C x S x S uint8, captions or None, label)`` of every sample whose
        index ``skip`` does not refuse, in index order (files decoded by loader workers)."""
        from torch.utils.data import DataLoader

        from anyssl.train.data import usable_cores

        start = 0
        for part in self.parts:
            captions = getattr(part, "captions", None)
            todo = [j for j in range(len(part)) if not skip(start + j)]
            workers = min(8, usable_cores()) if getattr(part, "file_backed", False) else 0
            loader = DataLoader(part, batch_size=None, sampler=todo, num_workers=workers)
            for j, (x, label) in zip(todo, loader, strict=True):
                image = x["image"] if isinstance(x, dict) else x
                yield start + j, image, captions[j] if captions else None, int(label)
            start += len(part)


def _factory_takes(modality: Any, src: str, name: str) -> bool:
    """Whether the dataset factory ``src`` resolves to takes the argument ``name``."""
    import inspect

    from anyssl.registry import DATASETS

    key, _ = modality._factory(src)
    return name in inspect.signature(DATASETS.get(*key)).parameters


def open_source(modality: str, src: str, split: Split, image_size: int | None,
                data_args: dict[str, Any]) -> Source:
    """The source's splits, read through the modality's dataset resolution (``--data``)."""
    from anyssl.modality import get_modality

    if modality not in MODALITIES:
        raise ValueError(f"--modality must be one of {', '.join(MODALITIES)}, got {modality!r}")
    if image_size is not None and "image_size" in data_args:
        raise ValueError("give the size once: --image-size or -d image_size, not both")
    mod = get_modality(modality)
    args, size = dict(data_args), image_size or data_args.get("image_size")
    takes_size = _factory_takes(mod, src, "image_size")
    if size is None and _factory_takes(mod, src, "device"):  # a folder: not the device's size
        size = FOLDER_IMAGE_SIZE
    if size is not None and takes_size:
        args["image_size"] = size
    names = ("train", "test") if split is Split.all else (split.value,)
    parts = [mod.dataset(src, n, seed=0, device="cpu", **args) for n in names]
    first = parts[0]
    labels = getattr(first, "class_names", None) or getattr(first, "classes", None)
    x = first[0][0]
    image = x["image"] if isinstance(x, dict) else x
    final = int(size or image.shape[-1])
    meta: dict[str, Any] = {
        "modality": modality, "source": src, "split": split.value, "image_size": final,
        "channels": int(image.shape[0]), "labeled": getattr(first, "num_classes", None) is not None,
        "label_names": [str(n) for n in labels] if labels else None,
        "suggested_epochs": getattr(first, "suggested_epochs", None)}
    if modality == "image-text":
        meta["prompt_templates"] = list(getattr(first, "prompt_templates", None) or [])
    return Source(parts, meta, None if size is None or takes_size else int(size))


def encode_image(image: Any, fmt: str, quality: int, resize: int | None) -> bytes:
    """A ``C x H x W`` uint8 tensor (C = 1 or 3) as ``fmt`` bytes, fitted to ``resize`` px."""
    from PIL import Image

    if resize is not None and tuple(image.shape[-2:]) != (resize, resize):
        from anyssl.modalities.image_text.images import fit_images

        image = fit_images(image.unsqueeze(0), resize)[0]
    arr = image.permute(1, 2, 0).numpy()
    pic = Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr)
    out = io.BytesIO()
    options = {"quality": quality} if fmt in ("jpg", "webp") else {}
    pic.save(out, format={"jpg": "JPEG", "png": "PNG", "webp": "WEBP"}[fmt], **options)
    return out.getvalue()


def sample_members(image: bytes, fmt: str, captions: list[str] | None, label: int,
                   names: list[str] | None) -> dict[str, bytes]:
    """The members of one sample: the image, ``cls`` when labeled, ``txt`` + ``json`` when
    captioned (all captions, the label and its name)."""
    members = {fmt: image}
    if label >= 0:
        members["cls"] = str(label).encode()
    if captions is not None:
        members["txt"] = captions[0].encode("utf-8")
        info: dict[str, Any] = {"captions": list(captions)}
        if label >= 0:
            info["label"] = label
            if names and label < len(names):
                info["label_name"] = names[label]
        members["json"] = json.dumps(info, ensure_ascii=False, sort_keys=True).encode("utf-8")
    return members


def write_shards(source: Source, out: Path, shard_size: int, fmt: str,
                 quality: int) -> dict[str, Any]:
    """Write ``source`` into ``out`` (resuming), a progress line per shard; the manifest."""
    from anyssl.shards import ShardWriter

    n = len(source)
    if n == 0:
        raise ValueError(f"source {source.meta['source']!r} holds no samples to write")
    n_shards, width = -(-n // shard_size), max(6, len(str(n - 1)))
    meta = {**source.meta, "image_format": fmt, "quality": quality if fmt != "png" else None}
    prefix = source.meta["split"]
    with ShardWriter(out, shard_size, prefix, meta) as writer:
        for s in range(n_shards):
            if writer.done(s):
                typer.echo(f"shard {s + 1}/{n_shards} already written, skipped")
        names = source.meta["label_names"]
        for i, image, captions, label in source.items(lambda k: writer.done(k // shard_size)):
            data = encode_image(image, fmt, quality, source.resize)
            writer.write(i, f"{i:0{width}d}", sample_members(data, fmt, captions, label, names))
            if (i + 1) % shard_size == 0 or i == n - 1:
                count = i - (i // shard_size) * shard_size + 1
                typer.echo(f"shard {i // shard_size + 1}/{n_shards}: {count} samples "
                           f"({prefix}-{i // shard_size:06d}.tar)")
    return writer.manifest


@cli_errors
def shards_command(
    src: Annotated[str, typer.Argument(help="A dataset anyssl reads for the modality: a name "
                                       "(digits, openmoji), a folder, a CSV/JSONL manifest, "
                                       "IDX files, an .npz.")],
    out: Annotated[Path, typer.Argument(help="The folder the shards and anyssl-shards.json "
                                        "go to (one split per folder).")],
    modality: Annotated[str, typer.Option(help="image or image-text.")] = "image",
    shard_size: Annotated[int, typer.Option(min=1, help="Samples per shard.")] = 10000,
    image_size: Annotated[int | None, typer.Option(
        min=1, help="Store images at this square size (shorter side, centre square).",
        show_default="the source's; 256 for image folders")] = None,
    image_format: Annotated[ImageFormat, typer.Option(
        help="Image member encoding (png is lossless).")] = ImageFormat.jpg,
    quality: Annotated[int, typer.Option(min=1, max=100, help="jpg/webp quality.")] = 95,
    data_arg: Annotated[list[str] | None, typer.Option(
        "--data-arg", "-d", help="Source dataset argument key=value, as anyssl train's.")] = None,
    split: Annotated[Split, typer.Option(help="The source split to write.")] = Split.train,
    plugin: PluginOption = None,
) -> None:
    """Write a dataset as WebDataset shards (OUT/SPLIT-000000.tar ...) with a manifest, for
    anyssl train --data "OUT/SPLIT-{000000..NNNNNN}.tar"; a re-run resumes."""
    from anyssl.cli.train import parse_key_values

    import_plugins(plugin)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} is a file; give a folder for the shards")
    source = open_source(modality, src, split, image_size, parse_key_values(data_arg))
    manifest = write_shards(source, out, shard_size, image_format.value, quality)
    typer.echo(f"wrote {manifest['total']} samples in {len(manifest['shards'])} shards to {out} "
               f"(manifest {out / 'anyssl-shards.json'}); read them with --data {out}")
