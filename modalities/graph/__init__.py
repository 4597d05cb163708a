"""Graph modality on PyTorch Geometric: graph-level (GraphCL) and node-level (GRACE) learning.

A batch is a ``torch_geometric.data.Batch`` of ``Data`` graphs; node-level data sets hold one
graph whose ``node_mask`` selects the nodes a split evaluates. Importing this package
registers, with ``scope="graph"``: the datasets ``digits-graphs`` (default, graph level),
``digits-knn`` (default of ``grace``, node level), ``tu`` (``--data tu:MUTAG``), ``planetoid``
(``--data planetoid:Cora``), ``sbm`` (a synthetic stochastic block model of any size) and
``path``; the evaluation protocol ``logreg_cv`` (GRACE's); GraphCL's and GRACE's
augmentations; the encoders ``gin`` and ``gcn``; the methods ``graphcl``, ``grace``,
``infograph`` and ``dgi`` (node level, default data ``digits-knn`` like ``grace``); and the
``graph`` Modality.
"""

import warnings

# torch_geometric's import calls torch.jit.script, which this torch deprecates with a
# FutureWarning on every CLI run; the warning is theirs and says nothing to our users.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
    import torch_geometric  # noqa: F401

from anyssl.eval.report import register_protocol
from anyssl.modalities.graph import (  # noqa: F401  (importing registers the parts)
    augment,
    augment_subgraph,
    datasets,
    datasets_digits,
    datasets_sbm,
    dgi,
    encoders,
    grace,
    graphcl,
    infograph,
    protocols,
    sampling,
)
from anyssl.modalities.graph.data import collate
from anyssl.modalities.graph.recipes import graph_recipe
from anyssl.modality import Modality, register_modality

for _name, _protocol in protocols.PROTOCOLS.items():  # GRACE's logreg_cv
    register_protocol(_name, _protocol)

MODALITY = register_modality(Modality(
    name="graph",
    description="graphs (PyG Batch): GraphCL and GRACE augmentations, GIN/GCN, TU and Planetoid",
    default_dataset="digits-graphs",
    default_encoder="gin",
    recipe=graph_recipe,
    collate=collate,
    eval_protocols=("svm", "linear", "knn"),
    method_datasets={"grace": "digits-knn", "dgi": "digits-knn"},
    # GRACE's protocol (CRIPAC-DIG/GRACE eval.py): random 10/10/80 splits where the data set
    # takes split_mode (Planetoid, path); DGI's is the public split (the default)
    method_data_args={"grace": {"split_mode": "random"}},
))

__all__ = ["MODALITY", "graph_recipe"]
