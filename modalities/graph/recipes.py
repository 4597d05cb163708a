"""Default graph view recipes.

- graph level (``graphcl`` and every core method on graph-level data): GraphCL's four
  augmentations (You et al. 2020, sec. 3.2, and their ``unsupervised_TU/aug.py`` ratios: 10% of
  the nodes or edges, a subgraph of 20% of the nodes), one drawn per graph and per view, the
  per-graph form of their ``random4`` setting. One recipe for every data set.
- node level (``grace`` and every core method on a node-level graph): GRACE's two views (Zhu et
  al. 2020, sec. 3.2; their Cora configuration): edge dropping 0.2 / 0.4 and feature masking
  0.3 / 0.4.
"""

from __future__ import annotations

from typing import Any

__all__ = ["GRACE_VIEWS", "GRAPHCL_VIEW", "graph_recipe"]

GRAPHCL_VIEW = ("node_drop(ratio=0.1) | edge_perturb(ratio=0.1) | attr_mask(ratio=0.1) | "
                "subgraph(ratio=0.2)")
GRACE_VIEWS = ("edge_drop(ratio=0.2), feature_mask(ratio=0.3)",
               "edge_drop(ratio=0.4), feature_mask(ratio=0.4)")


def graph_recipe(method: str, dataset: Any) -> list[str]:
    """Two view specs: GRACE's pair for node-level data (or ``grace``), else GraphCL's."""
    node_level = getattr(dataset, "level", "graph") == "node"
    if node_level or method.lower() == "grace":
        return list(GRACE_VIEWS)
    return [GRAPHCL_VIEW, GRAPHCL_VIEW]
