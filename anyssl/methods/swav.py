"""SwAV (Caron et al. 2020, "Unsupervised Learning of Visual Features by Contrasting Cluster
Assignments"): each global view's code (its Sinkhorn-Knopp assignment to learned prototypes)
is predicted from every other view; multi-crop; an optional queue for small batches."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from anyssl.distributed import gather_no_grad, rank, world_size
from anyssl.heads import MLPHead
from anyssl.memory import Queue
from anyssl.methods._common import check_views, encoder_dim
from anyssl.objectives_cluster import SinkhornKnopp, swav_loss
from anyssl.registry import METHODS
from anyssl.types import Batch, ViewSource

__all__ = ["SwAV"]


@METHODS.register("swav")
class SwAV(nn.Module):
    """SwAV: swapped prediction of Sinkhorn-Knopp cluster codes over prototypes; multi-crop.

    ``z_v = normalize(projector(encoder(x_v)))``, scores ``p_v = prototypes(z_v)`` (prototypes
    L2-normalized before each step), codes ``q_i = sinkhorn(p_i)`` for the ``n_global`` global
    views (the views' ``n_global``, default all; ``--crops_for_assign 0 1``), and
    ``loss = swav_loss(p, q, T)`` (``main_swav.py`` ``train``). Views of another size are encoded
    one view at a time, so any modality's views work.

    Queue (``queue_size > 0``): from epoch ``queue_start_epoch`` the embeddings of each global
    view are kept (one ``Queue`` per global view); once a queue is full, its scores join the
    Sinkhorn problem and only the batch's codes are used. Epochs and the frozen prototypes
    (their gradients dropped for the first ``freeze_prototypes_iters`` steps) follow the
    trainer's ``before_optimizer_step`` hook; the epoch reached (and the queue's fill) is
    saved with the weights.

    Several processes: the Sinkhorn normalizers are all-reduced (``distributed_sinkhorn``) and
    each rank's loss is the mean over its samples. The reference keeps a queue of
    ``queue_length / world_size`` on each rank; here every rank holds the same queue of every
    rank's embeddings (gathered, as MoCo's) and brings its own ``1/world_size`` slice of it to
    the all-reduced Sinkhorn: the same codes, and 2 x B equals 1 x 2B also with a queue.

    Args:
        encoder, views: the backbone (with ``out_dim``) and the view generator (global first).
        hidden_dim, out_dim: projector widths 2048 and 128 (``--hidden_mlp``, ``--feat_dim``).
        num_prototypes: 3000 (``--nmb_prototypes``, ImageNet).
        temperature: 0.1 (``--temperature``). epsilon, sinkhorn_iterations: 0.05 and 3.
        queue_size: 0, no queue (``--queue_length``; 3840 in the batch-256 scripts).
        queue_start_epoch: 15 (``--epoch_queue_starts``).
        freeze_prototypes_iters: 313 (``--freeze_prototypes_niters``).
    """

    train_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "lars",  # SGD wrapped in LARC, trust coefficient 0.001 (main_swav.py L171-177)
        "lr": 0.6,  # --base_lr 0.6 at batch 256 (README, scripts/swav_400ep_bs256_pretrain.sh)
        "lr_scaling": "linear",  # lr x B/256 (Goyal et al.); the batch-4096 script uses 4.8
        "weight_decay": 1e-6,  # --wd 0.000001
        "momentum": 0.9,  # SGD momentum (main_swav.py L171-176)
        "schedule": "cosine",  # cosine to --final_lr (main_swav.py L180-182)
        "warmup_epochs": 0,  # --warmup_epochs 0 at batch 256 (10 at batch 4096)
        # --final_lr 0.0006 with --base_lr 0.6 (scripts/swav_400ep_bs256_pretrain.sh L42-43), and
        # 0.0048 with 4.8 at batch 4096 (swav_800ep_pretrain.sh): 0.0006 / 0.6 = 0.001 of the peak
        "final_lr_ratio": 0.001,
    }

    def __init__(
        self,
        encoder: nn.Module,
        views: ViewSource,
        *,
        hidden_dim: int = 2048,
        out_dim: int = 128,
        num_prototypes: int = 3000,
        temperature: float = 0.1,
        epsilon: float = 0.05,
        sinkhorn_iterations: int = 3,
        queue_size: int = 0,
        queue_start_epoch: int = 15,
        freeze_prototypes_iters: int = 313,
    ) -> None:
        super().__init__()
        check_views(views, "SwAV")
        self.encoder, self.views = encoder, views
        self.n_global = int(getattr(views, "n_global", None) or views.n_views)
        if not 1 <= self.n_global <= views.n_views or queue_size < 0:
            raise ValueError(f"need n_global in [1, {views.n_views}] and queue_size >= 0, got "
                             f"{self.n_global} and {queue_size}")
        self.projector = MLPHead(encoder_dim(encoder), hidden_dim, out_dim)
        self.prototypes = nn.Linear(out_dim, num_prototypes, bias=False)
        self.sinkhorn = SinkhornKnopp(epsilon, sinkhorn_iterations)
        self.queues = nn.ModuleList([Queue(queue_size, out_dim) for _ in range(self.n_global)]
                                    if queue_size else [])
        self.temperature, self.queue_start_epoch = temperature, queue_start_epoch
        self.freeze_prototypes_iters = freeze_prototypes_iters
        self.epoch, self.queued = 0, 0  # the epoch of this step; rows enqueued so far

    def training_step(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        inputs, _ = batch
        with torch.no_grad():  # normalize the prototypes (main_swav.py L277-281)
            self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))
        views = self.views(inputs)
        z = [F.normalize(self.projector(self.encoder(v)), dim=1) for v in views]  # V x (N x d)
        scores = [self.prototypes(zv) for zv in z]  # V x (N x K)
        codes = [self._codes(scores[i], z[i], i) for i in range(self.n_global)]  # G x (N x K)
        loss = swav_loss(scores, codes, self.temperature)
        return loss, {"loss": loss.detach()}

    @torch.no_grad()
    def _codes(self, scores: Tensor, z: Tensor, i: int) -> Tensor:
        """Codes of global view ``i``: Sinkhorn over its scores and, once the queue of view
        ``i`` is full, this rank's share of the queue's scores; then ``z`` joins the queue."""
        n = scores.shape[0]
        if not self.queues or self.epoch < self.queue_start_epoch:
            return self.sinkhorn(scores.detach())  # N x K
        queue: Any = self.queues[i]
        if self.queued >= queue.size:  # N x K, then N' x K rows of the queue
            share = torch.tensor_split(queue.keys, world_size())[rank()]  # N' x d
            scores = torch.cat([self.prototypes(share.to(z)), scores.detach()])
        queue.enqueue(gather_no_grad(z))  # every rank's embeddings, in rank order
        if i == self.n_global - 1:
            self.queued += n * world_size()
        return self.sinkhorn(scores)[-n:]  # N x K: the batch's codes

    def forward(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """Same as ``training_step``, so a ``DistributedDataParallel`` wrapper can call it."""
        return self.training_step(batch)

    def before_optimizer_step(self, step: int, steps_per_epoch: int, max_steps: int) -> None:
        """Drop the prototypes' gradients for the first ``freeze_prototypes_iters`` steps
        (main_swav.py L324-328); note the epoch of the next step."""
        if step < self.freeze_prototypes_iters:
            self.prototypes.weight.grad = None
        self.epoch = (step + 1) // steps_per_epoch

    def on_step_end(self, step: int, max_steps: int) -> None:
        """Nothing to update after the optimizer step."""

    def get_extra_state(self) -> Tensor:
        """The epoch reached and the rows enqueued travel with the checkpoint."""
        return torch.tensor([self.epoch, self.queued])

    def set_extra_state(self, state: Tensor) -> None:
        self.epoch, self.queued = (int(v) for v in state)
