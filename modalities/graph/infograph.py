"""InfoGraph (Sun et al. 2020, "InfoGraph: Unsupervised and Semi-supervised Graph-Level
Representation Learning via Mutual Information Maximization", sec. 3.3, eq. 4-5): maximise the
Jensen-Shannon mutual information between each node's local feature and its graph's global
feature (``anyssl.objectives_mi.local_global_jsd``). No augmentation: the method trains on the
batch as loaded (``RawViews``).

Reference code: ``fanyun-sun/InfoGraph``, ``unsupervised/main.py`` (``InfoGraph``), ``model.py``
(``FF``), ``losses.py`` (``local_global_loss_``), ``gin.py`` (``Encoder``: the ``gin`` encoder).

Several processes: the global features are gathered with gradient, so a node's negatives are
the other graphs of the whole global batch (``LocalGlobalJSD``), as on one process.
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

import torch
from torch import Tensor, nn
from torch_geometric.nn import global_add_pool, global_mean_pool

from anyssl.methods._common import encoder_dim
from anyssl.modalities.graph.encoders import graph_index, require_level
from anyssl.objectives_mi import LocalGlobalJSD
from anyssl.registry import METHODS
from anyssl.types import Batch, ViewSource
from anyssl.views import DeviceSeed, batch_device

__all__ = ["FF", "InfoGraph", "RawViews", "unaugmented"]

_READOUTS = {"sum": global_add_pool, "mean": global_mean_pool}


class RawViews:
    """The one view of the methods that use no augmentation (InfoGraph, DGI): the batch itself.

    It keeps the trainer's view interface (``n_views``, ``manual_seed``) and, like
    ``ViewGenerator``, a seeded generator per device (``generator_for``) that a method draws its
    own randomness from (DGI's feature shuffle), so runs stay reproducible.
    """

    n_views = 1
    #: what ``--aug`` / per-view ``--views`` get (``anyssl.build``)
    no_specs = ("trains on the unaugmented graphs, so --aug and --views specs do not apply; "
                "drop them (graphcl and grace take augmentations)")

    def __init__(self) -> None:
        self._rng = DeviceSeed()

    def manual_seed(self, seed: int) -> None:
        self._rng.manual_seed(seed)

    def generator_for(self, device: torch.device) -> torch.Generator | None:
        """The seeded generator on ``device`` (None when unseeded: the global RNG)."""
        return self._rng.generator_for(device)

    def __call__(self, x: Any) -> list[Any]:
        batch_device(x)  # a batch whose device cannot be told fails here, as a view would
        return [x]

    def __repr__(self) -> str:
        return "RawViews(unaugmented)"


def unaugmented(views: ViewSource | None, method: str) -> RawViews:
    """``views`` when it is ``RawViews`` (the recipe of ``infograph`` and ``dgi``), a new one for
    ``None``; any other views are refused: the method would silently ignore them."""
    if views is None:
        return RawViews()
    if not isinstance(views, RawViews):
        raise ValueError(f"{method} trains on the unaugmented graphs and takes no views; drop "
                         f"--aug / --views (got {views!r})")
    return views


class FF(nn.Module):
    """InfoGraph's discriminator head (``model.py::FF``): three Linear+ReLU layers plus a linear
    shortcut, ``block(x) + shortcut(x)``; Xavier-uniform weights, zero biases (``init_emb``).

    Shape: ``* x dim -> * x dim``.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim), nn.ReLU(),
                                   nn.Linear(dim, dim), nn.ReLU())
        self.linear_shortcut = nn.Linear(dim, dim)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x) + self.linear_shortcut(x)


@METHODS.register("infograph", scope="graph")
class InfoGraph(nn.Module):
    """InfoGraph: local-global mutual information of unaugmented graphs (graph level).

    Each step encodes every node (``encoder.nodes``: for ``gin`` the concatenation of every
    layer's output, InfoGraph's local features), pools them per graph (``readout``; the sum, as
    ``gin``'s graph embedding, which evaluation uses), passes both through their ``FF`` heads
    and applies ``local_global_jsd``. The prior-matching term (``--prior``, off in the code's
    defaults) is not implemented.

    Args:
        encoder: graph-level, with ``nodes(batch) -> num_nodes x encoder.out_dim``.
        views: ``RawViews`` (the default and the graph recipe's): InfoGraph trains on the raw
            graphs; augmented views are refused.
        readout: ``"sum"`` (``global_add_pool``, the code's) or ``"mean"``.
        gather: with several processes, score each node against every rank's graphs.
    """

    train_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "adam",  # main.py:104, optim.Adam(model.parameters(), lr=lr)
        "lr": 1e-3,  # unsupervised/README.md: python main.py --DS DATASET --lr 0.001
        "lr_scaling": "none",  # Adam at a fixed lr (the reference code scales none)
        "weight_decay": 0.0,  # main.py:104 passes none
        "momentum": 0.9,  # Adam's beta1
        "schedule": "constant",  # no scheduler in main.py
        "warmup_epochs": 0.0,
        "batch_size": 128,  # main.py:85 (and 20 epochs, main.py:83: pass --epochs 20)
    }

    def __init__(self, encoder: nn.Module, views: ViewSource | None = None, *,
                 readout: str = "sum", gather: bool = True) -> None:
        super().__init__()
        require_level(encoder, "graph", "infograph",
                      "node-level data needs a node-level method: use dgi or grace")
        if not callable(getattr(encoder, "nodes", None)):
            raise ValueError(f"InfoGraph needs an encoder with per-node embeddings (nodes()); "
                             f"{type(encoder).__name__} has none: use gin or gcn")
        if readout not in _READOUTS:
            raise ValueError(f"unknown readout {readout!r}; choose one of: "
                             f"{', '.join(_READOUTS)}")
        self.encoder, self.views, self.readout = encoder, unaugmented(views, "infograph"), readout
        dim = encoder_dim(encoder)
        self.local_head, self.global_head = FF(dim), FF(dim)  # local_d, global_d
        self.objective = LocalGlobalJSD(gather=gather)

    def training_step(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        inputs, _ = batch
        nodes = cast(Any, self.encoder).nodes(inputs)  # V x D: M in the code
        index, n = graph_index(inputs)  # V: each node's graph
        graphs = _READOUTS[self.readout](nodes, index, size=n)  # G x D: y in the code
        loss = self.objective(self.local_head(nodes), self.global_head(graphs), index)
        return loss, {"loss": loss.detach()}

    def forward(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """Same as ``training_step``, so a ``DistributedDataParallel`` wrapper can call it."""
        return self.training_step(batch)

    def on_step_end(self, step: int, max_steps: int) -> None:
        """Nothing to update after the optimizer step."""
