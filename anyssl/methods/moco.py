"""MoCo v1 (He et al. 2020, "Momentum Contrast for Unsupervised Visual Representation
Learning") and v2 (Chen et al. 2020, "Improved Baselines with Momentum Contrastive Learning").

A query encoder is trained to pick its key (the other view, through a momentum copy of the
query encoder) out of a queue of keys from earlier batches. v2 changes the linear head to an MLP,
the temperature from 0.07 to 0.2, the schedule to cosine, and the augmentations (the
modality's recipe, not this file).

Several processes: the keys of every rank are gathered before they enter the queue, so every
rank holds the same queue as one process with the whole batch would. Shuffling BN (sec. 3.3,
``shuffle_bn``, on by default as in the reference code): the key batch is shuffled across the
processes before the key encoder and restored after it, so BatchNorm's per-process statistics
cannot leak which key is the positive (``_shuffle_bn.py``). It needs tensor inputs; other
batches (graphs, dicts) are encoded unshuffled, with a warning. With SyncBatchNorm (a trainer
option) the statistics are global anyway and shuffling only costs two gathers: pass
``shuffle_bn=False``.

One process: nothing to shuffle across, and with one BatchNorm group a query and its key are
normalized with statistics of the same images (the shortcut of sec. 3.3). The reference's
one-GPU recipe (the CIFAR-10 demo notebook) splits every BatchNorm of both encoders into 8
groups and shuffles the key batch before the key encoder; ``split_bn=8`` (the default) does the
same (``anyssl.norm``), ``split_bn=0`` turns it off. Several processes ignore ``split_bn``.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from anyssl.distributed import gather_no_grad, world_size
from anyssl.heads import MLPHead
from anyssl.memory import Queue
from anyssl.methods._common import check_views, encoder_dim
from anyssl.methods._shuffle_bn import shuffle_across_ranks, unshuffle_across_ranks
from anyssl.momentum import MomentumTarget
from anyssl.norm import batchnorm_splits, use_split_batchnorm
from anyssl.objectives import InfoNCELoss
from anyssl.registry import METHODS
from anyssl.types import Batch, ViewSource

__all__ = ["MoCo", "MoCoV1"]

HEADS = ("mlp", "linear")


@METHODS.register("mocov2", description="MoCo v2: momentum key encoder, queue, MLP head")
class MoCo(nn.Module):
    """MoCo with a queue of negatives; the defaults are MoCo v2's (registered as ``mocov2``).

    Each step: ``q = head(encoder(x_q))``, ``k = key_encoder(x_k)`` (the momentum copy of
    encoder + head), ``loss = info_nce(q, k, T, negatives=queue)``, then ``k`` is enqueued. With
    ``symmetric`` the loss is also computed with the views swapped and the two are averaged
    (the MoCo CIFAR demo sums them); both key batches are enqueued.

    Args:
        encoder, views: the backbone (with ``out_dim``) and the 2-view generator.
        head: ``"mlp"`` (v2: Linear-ReLU-Linear, no BatchNorm, as in the reference code) or
            ``"linear"`` (v1).
        hidden_dim: MLP hidden width, 2048 (v2 uses the ResNet-50 width). ``None``: encoder's.
        out_dim: key/query size, 128 (v1 sec. 4, v2).
        queue_size: number of negatives K, 65,536 (v1 sec. 4); smaller for small data sets.
        temperature: 0.2 (v2); 0.07 in v1.
        momentum: key encoder momentum m, 0.999 (v1 sec. 4), constant.
        symmetric: symmetrized loss (the MoCo CIFAR-10 demo), off in the papers.
        head_bn: BatchNorm after the MLP head's hidden layer (as SimCLR and MoCo v3 heads have);
            off in the v2 reference code. It spreads the keys of a freshly initialised encoder
            (post-ReLU pooled features have pairwise cosine ~0.9), which short runs need.
        shuffle_bn: shuffle the key batch around the key encoder (sec. 3.3, on in the
            reference code): across processes, or within the one process when ``split_bn``
            splits its BatchNorm; a no-op for non-tensor inputs.
        split_bn: on one process, split every BatchNorm of both encoders into this many groups
            (the MoCo CIFAR-10 demo's ``--bn-splits 8``); 0 or 1 turns it off.
    """

    train_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "sgd",  # MoCo v2 sec. 3 (as v1)
        "lr": 0.03,  # at batch 256 (MoCo v2 sec. 3, Table 1)
        "lr_scaling": "linear",  # the reference README: lr 0.015 at batch 128 (Goyal et al.)
        "weight_decay": 1e-4,  # MoCo v1 sec. 4, kept by v2
        "momentum": 0.9,  # SGD momentum (MoCo v1 sec. 4)
        "schedule": "cosine",  # MoCo v2 sec. 3: cosine learning rate schedule
        "warmup_epochs": 0,  # no warmup in MoCo v2
    }

    def __init__(
        self,
        encoder: nn.Module,
        views: ViewSource,
        *,
        head: str = "mlp",
        hidden_dim: int | None = 2048,
        out_dim: int = 128,
        queue_size: int = 65536,
        temperature: float = 0.2,
        momentum: float = 0.999,
        symmetric: bool = False,
        head_bn: bool = False,
        shuffle_bn: bool = True,
        split_bn: int = 8,
    ) -> None:
        super().__init__()
        check_views(views, type(self).__name__, exactly=2)
        if head not in HEADS:
            raise ValueError(f"unknown MoCo head {head!r}; valid: {', '.join(HEADS)}")
        if split_bn < 0:
            raise ValueError(f"split_bn must be >= 0 (0 turns it off), got {split_bn}")
        self.encoder, self.views, self.symmetric = encoder, views, symmetric
        self.shuffle_bn, self.split_bn = shuffle_bn, split_bn
        in_dim = encoder_dim(encoder)
        layers = 2 if head == "mlp" else 1
        self.head = MLPHead(in_dim, hidden_dim or in_dim, out_dim, layers, batch_norm=head_bn)
        # before the key encoder is copied, so both encoders split; 0 layers: nothing to split
        self._split_layers = (use_split_batchnorm(self.encoder) + use_split_batchnorm(self.head)
                              if split_bn > 1 else 0)
        self.key_encoder = MomentumTarget(nn.Sequential(self.encoder, self.head), momentum)
        self.queue = Queue(queue_size, out_dim)
        self.loss = InfoNCELoss(temperature)

    def _contrast(self, x_q: Any, x_k: Any) -> tuple[Tensor, Tensor]:
        """Loss of queries from ``x_q`` against keys from ``x_k`` and the queue; and the keys."""
        q = self.head(self.encoder(x_q))  # N x out_dim
        k = self._keys(x_k)  # N x out_dim, no grad
        # clone: the queue is updated in place after this loss, before its backward pass
        loss = self.loss(q, k, negatives=self.queue.keys.clone())  # logits N x (1+K)
        return loss, k

    def _keys(self, x_k: Any) -> Tensor:
        """Keys of ``x_k``, the batch shuffled around the key encoder (shuffling BN): across
        processes, or on one process when its BatchNorm is split."""
        if self.shuffle_bn and world_size() == 1 and self._splits() > 1 and isinstance(
                x_k, Tensor):
            perm = torch.randperm(x_k.shape[0], generator=self._generator(x_k.device),
                                  device=x_k.device)  # N
            return self.key_encoder(x_k[perm])[torch.argsort(perm)]  # N x out_dim, in order
        if not self.shuffle_bn or world_size() == 1:
            return self.key_encoder(x_k)
        if not isinstance(x_k, Tensor):
            warnings.warn(f"MoCo's shuffle_bn needs tensor inputs, got {type(x_k).__name__}: "
                          f"keys are encoded unshuffled (pass shuffle_bn=False or use "
                          f"SyncBatchNorm)", stacklevel=3)
            return self.key_encoder(x_k)
        x_k, unshuffle = shuffle_across_ranks(x_k)  # this rank's slice of the shuffled batch
        return unshuffle_across_ranks(self.key_encoder(x_k), unshuffle)  # N x out_dim

    def _generator(self, device: torch.device) -> torch.Generator | None:
        """The views' seeded generator (the key shuffle is seeded with the views), if any."""
        generator_for = getattr(self.views, "generator_for", None)
        return generator_for(device) if callable(generator_for) else None

    def _splits(self) -> int:
        """BatchNorm groups of this step: ``split_bn`` on one process, else 1."""
        return self.split_bn if self._split_layers and world_size() == 1 else 1

    def training_step(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        inputs, _ = batch
        x_1, x_2 = self.views(inputs)
        with batchnorm_splits(self, self._splits()):
            loss, k = self._contrast(x_1, x_2)
            keys = [k]
            if self.symmetric:
                loss_21, k_1 = self._contrast(x_2, x_1)
                loss = 0.5 * (loss + loss_21)
                keys.append(k_1)
        # keys of every process, each key batch in rank order: the queue one process would
        # fill with the whole batch. (V*N*W) x out_dim
        self.queue.enqueue(torch.cat([gather_no_grad(k) for k in keys]))
        return loss, {"loss": loss.detach()}

    def forward(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """Same as ``training_step``, so a ``DistributedDataParallel`` wrapper can call it."""
        return self.training_step(batch)

    def on_step_end(self, step: int, max_steps: int) -> None:
        """Momentum update of the key encoder (eq. 2) after the optimizer step."""
        self.key_encoder.update(step, max_steps)


@METHODS.register("mocov1", description="MoCo v1: momentum key encoder, queue, linear head")
class MoCoV1(MoCo):
    """MoCo v1: ``MoCo`` with a linear head, temperature 0.07 and a step schedule."""

    train_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "sgd",  # MoCo v1 sec. 4
        "lr": 0.03,  # at batch 256 (sec. 4)
        "lr_scaling": "linear",  # the reference README: lr 0.015 at batch 128 (Goyal et al.)
        "weight_decay": 1e-4,  # sec. 4
        "momentum": 0.9,  # SGD momentum (sec. 4)
        "schedule": "step",  # x0.1 at epochs 120 and 160 of 200 (sec. 4)
        "milestones": [0.6, 0.8],  # 120/200 and 160/200
        "warmup_epochs": 0,  # no warmup (sec. 4)
    }

    def __init__(
        self,
        encoder: nn.Module,
        views: ViewSource,
        *,
        out_dim: int = 128,
        queue_size: int = 65536,
        temperature: float = 0.07,
        momentum: float = 0.999,
        symmetric: bool = False,
        shuffle_bn: bool = True,
        split_bn: int = 8,
    ) -> None:
        super().__init__(
            encoder, views, head="linear", hidden_dim=None, out_dim=out_dim,
            queue_size=queue_size, temperature=temperature, momentum=momentum,
            symmetric=symmetric, shuffle_bn=shuffle_bn, split_bn=split_bn,
        )
