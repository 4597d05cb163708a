"""anyssl.shards: training data past memory, read from WebDataset-format tar shards.

A dataset that does not fit in memory or in a folder of loose files is stored as tar shards of
``key.ext`` members grouped by key (the format img2dataset and WebDataset write), with a manifest
``anyssl-shards.json`` beside them giving each shard's sample count. ``ShardSet`` reads any
sample by its members' byte offsets (from an index of the tar headers), and datasets over shards
(``anyssl.modalities.image`` / ``image_text``) are ordinary map-style datasets over it.

What is guaranteed, because the order is a pure function of ``(seed, epoch)`` computed in the
training process (``epoch_order``, handed to ``EpochSampler`` as its ``order_fn``):

* every sample is seen once per epoch across all ranks and DataLoader workers (the incomplete
  last global batch is dropped, by every rank alike), and every rank takes the same number of
  steps;
* the same seed gives the same order, on every rank and in every run;
* a run resumed mid-epoch continues at the exact sample: the sampler's start position indexes
  the same order the interrupted run used;
* reads stay local: the order walks the shards one after another (a new shard order each epoch)
  and shuffles inside windows of ``shuffle_window`` positions, so a worker's batch comes from one
  or two open shards;
* a corrupt or missing sample (a truncated shard, a member that fails to decode) is replaced by
  the next readable sample of the same shard and counted (``ShardSet.skipped_count()``, workers
  included), so batches keep their size; ``on_error="raise"`` stops instead, naming the shard
  file and key.

Why a small reader rather than webdataset's pipeline: webdataset streams shards through an
``IterableDataset`` split by shard per node and worker, which gives ranks uneven sample counts
and no exact mid-epoch resume. Reading by offset from a map-style dataset keeps the trainer's
sampler, and with it all of the guarantees above, in stdlib ``tarfile`` + torch.

Importing this package loads no torch: ``ShardSet``, ``read_with_fallback`` and ``epoch_order``
load on first use (PEP 562).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from anyssl.shards.index import SampleRef, ShardIndex, index_shard
from anyssl.shards.manifest import MANIFEST, read_manifest, write_manifest
from anyssl.shards.spec import ShardError, expand_shards, is_shard_spec
from anyssl.shards.writer import ShardWriter

if TYPE_CHECKING:
    from anyssl.shards.order import epoch_order
    from anyssl.shards.shardset import ShardSet, read_with_fallback

__all__ = [
    "MANIFEST", "SampleRef", "ShardError", "ShardIndex", "ShardSet", "ShardWriter",
    "epoch_order", "expand_shards", "index_shard", "is_shard_spec", "read_manifest",
    "read_with_fallback", "write_manifest",
]
_LAZY = {"ShardSet": "shardset", "read_with_fallback": "shardset", "epoch_order": "order"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'anyssl.shards' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"anyssl.shards.{_LAZY[name]}"), name)
    globals()[name] = value
    return value
