"""Default graph view recipes.

- graph level (``graphcl`` and every core method on graph-level data): GraphCL's four
  augmentations (You et al. 2020, sec. 3.2, and their ``unsupervised_TU/aug.py`` ratios: 10% of
  the nodes or edges, a subgraph of 20% of the nodes), one drawn per graph and per view, the
  per-graph form of their ``random4`` setting. One recipe for every data set. The two-view
  methods of 2021 (``simsiam``, ``barlowtwins``, ``vicreg``, ``mocov3``, ``nnclr``) get it too.
- node level (``grace`` and every core method on a node-level graph): GRACE's two views (Zhu et
  al. 2020, sec. 3.2; their Cora configuration): edge dropping 0.2 / 0.4 and feature masking
  0.3 / 0.4.
- ``graphcl-tu`` (``--views recipe:graphcl-tu``): GraphCL's unsupervised TU setting
  (``Shen-Lab/GraphCL``, ``unsupervised_TU/gsimclr.py`` lines 203-245: ``loss_cal(x, x_aug)``
  contrasts the *unaugmented* graph ``data`` with one augmented copy ``data_aug``), its
  ``random4`` draw (``aug.py`` lines 273-285) of node dropping, edge perturbation, attribute
  masking (N(0.5, 0.5^2) noise, line 403) and a subgraph, where edge perturbation only drops
  edges (``permute_edges``, lines 330-347: ``idx_add`` is drawn but never used). The code
  gives every TU set but MUTAG, PTC_MR, DD, PROTEINS, NCI1 and NCI109 (the ones with node
  labels) a constant feature (``aug.py`` lines 80-94): ``-d features=constant`` on the others.
  Not the default: two augmented views with degree features scored at or above GraphCL's
  paper on the TU sets tried (issue 13).
- ``dino``, ``swav`` (multi-crop, Caron et al. 2020, sec. 3.2; 2021, sec. 3.1) on graph-level
  data: GraphCL's views as the 2 global ones, plus 6 local views: a connected random subgraph
  keeping a share ``size`` = 0.2 of each graph's nodes (GraphCL's subgraph size), with 10% of
  the features masked. ``--views 2+6x0.1`` sets the counts and the share. Node-level data has
  no local view (a subgraph drops the very nodes whose embeddings are compared): the pair only.
"""

from __future__ import annotations

from typing import Any

from anyssl.modalities.graph.infograph import RawViews
from anyssl.multicrop import MultiCrop

__all__ = ["GRACE_VIEWS", "GRAPHCL_TU_VIEWS", "GRAPHCL_VIEW", "LOCAL_SIZE", "NAMED_RECIPES",
           "graph_recipe", "local_view"]

GRAPHCL_VIEW = ("node_drop(ratio=0.1) | edge_perturb(ratio=0.1) | attr_mask(ratio=0.1) | "
                "subgraph(ratio=0.2)")
#: GraphCL's unsupervised TU code: the graph itself, then one ``random4`` augmentation whose
#: edge perturbation only drops edges (see the module docstring).
GRAPHCL_TU_VIEWS = ("identity",
                    "node_drop(ratio=0.1) | edge_perturb(ratio=0.1,add=false) | "
                    "attr_mask(ratio=0.1) | subgraph(ratio=0.2)")
#: Recipes named by ``--views recipe:NAME`` that are not a method's default.
NAMED_RECIPES: dict[str, tuple[str, ...]] = {"graphcltu": GRAPHCL_TU_VIEWS}
GRACE_VIEWS = ("edge_drop(ratio=0.2), feature_mask(ratio=0.3)",
               "edge_drop(ratio=0.4), feature_mask(ratio=0.4)")
#: The share of each graph's nodes a local view keeps (GraphCL's subgraph ratio).
LOCAL_SIZE = 0.2
N_LOCAL = 6  # SwAV's 6 local crops (README: --nmb_crops 2 6)
NO_LOCAL = ("graph: node-level data has no local views (a subgraph drops the nodes whose "
            "embeddings are compared); use --views 2+0 or graph-level data")


def local_view(size: Any) -> str:
    """The local view: a subgraph keeping a share ``size`` of the nodes, then attribute
    masking (10% of the nodes, GraphCL's ratio)."""
    share = float(size)
    if not 0.0 < share <= 1.0:
        raise ValueError(f"graph local views keep a share of each graph's nodes in (0, 1], got "
                         f"{size!r} (e.g. --views 2+6x0.1)")
    return f"subgraph(ratio={share:g}), attr_mask(ratio=0.1)"


def graph_recipe(method: str, dataset: Any) -> Any:
    """Two view specs: GRACE's pair for node-level data (or ``grace``), else GraphCL's; a
    ``MultiCrop`` for ``dino`` and ``swav``; the unaugmented graph (``RawViews``) for
    ``infograph`` and ``dgi``; a named recipe (``graphcl-tu``) by its name."""
    node_level = getattr(dataset, "level", "graph") == "node"
    key = method.lower().replace("-", "").replace("_", "")
    if key in ("infograph", "dgi"):  # both contrast the raw graph with itself / a corruption
        return RawViews()
    if key in NAMED_RECIPES:
        if node_level:
            raise ValueError(f"recipe {method!r} is for graph-level data (GraphCL's TU "
                             "setting); node-level data takes GRACE's views (the default)")
        return list(NAMED_RECIPES[key])
    if key in ("dino", "swav"):
        if node_level:
            return MultiCrop(GRACE_VIEWS, modality="graph", no_local=NO_LOCAL)
        return MultiCrop((GRAPHCL_VIEW, GRAPHCL_VIEW), local_view, N_LOCAL, LOCAL_SIZE,
                         modality="graph")
    if node_level or method.lower() == "grace":
        return list(GRACE_VIEWS)
    return [GRAPHCL_VIEW, GRAPHCL_VIEW]
