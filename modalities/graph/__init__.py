"""Graph modality on PyTorch Geometric: graph-level (GraphCL) and node-level (GRACE) learning.

A batch is a ``torch_geometric.data.Batch`` of ``Data`` graphs; node-level data sets hold one
graph whose ``node_mask`` selects the nodes a split evaluates. Importing this package
registers, with ``scope="graph"``: the datasets ``digits-graphs`` (default, graph level),
``digits-knn`` (default of ``grace``, node level), ``tu`` (``--data tu:MUTAG``), ``planetoid``
(``--data planetoid:Cora``) and ``path``; GraphCL's and GRACE's augmentations; the encoders
``gin`` and ``gcn``; the methods ``graphcl`` and ``grace``; and the ``graph`` Modality.
"""

import warnings

# torch_geometric's import calls torch.jit.script, which this torch deprecates with a
# FutureWarning on every CLI run; the warning is theirs and says nothing to our users.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
    import torch_geometric  # noqa: F401

from anyssl.modalities.graph import (  # noqa: F401  (importing registers the parts)
    augment,
    augment_subgraph,
    datasets,
    datasets_digits,
    encoders,
    grace,
    graphcl,
)
from anyssl.modalities.graph.data import collate
from anyssl.modalities.graph.recipes import graph_recipe
from anyssl.modality import Modality, register_modality

MODALITY = register_modality(Modality(
    name="graph",
    description="graphs (PyG Batch): GraphCL and GRACE augmentations, GIN/GCN, TU and Planetoid",
    default_dataset="digits-graphs",
    default_encoder="gin",
    recipe=graph_recipe,
    collate=collate,
    eval_protocols=("svm", "linear", "knn"),
    method_datasets={"grace": "digits-knn"},
))

__all__ = ["MODALITY", "graph_recipe"]
