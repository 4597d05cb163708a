"""The mutual-information objectives against hand-written transcriptions of their reference code
(InfoGraph's ``local_global_loss_``, DGI's ``BCEWithLogitsLoss``), values and gradients, the
several-process split, and bad input."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from anyssl.objectives_mi import LocalGlobalJSD, dgi_bce, jsd_mi_loss, local_global_jsd


# --- references, written out from the papers' code ----------------------------------------------
def ref_local_global_loss(l_enc: Tensor, g_enc: Tensor, batch: Tensor) -> Tensor:
    """InfoGraph ``unsupervised/losses.py::local_global_loss_`` with ``measure="JSD"`` and
    ``cortex_DIM/functions/gan_losses.py`` (the ``.cuda()`` masks kept on the CPU)."""
    log_2 = math.log(2.0)
    num_graphs, num_nodes = g_enc.shape[0], l_enc.shape[0]
    pos_mask = torch.zeros((num_nodes, num_graphs))
    neg_mask = torch.ones((num_nodes, num_graphs))
    for nodeidx, graphidx in enumerate(batch):
        pos_mask[nodeidx][graphidx] = 1.0
        neg_mask[nodeidx][graphidx] = 0.0
    res = torch.mm(l_enc, g_enc.t())
    e_pos = (log_2 - F.softplus(-(res * pos_mask))).sum() / num_nodes  # get_positive_expectation
    q = res * neg_mask
    e_neg = (F.softplus(-q) + q - log_2).sum() / (num_nodes * (num_graphs - 1))
    return e_neg - e_pos


def ref_dgi_loss(sc_1: Tensor, sc_2: Tensor) -> Tensor:
    """DGI ``execute.py``: ``b_xent(logits, lbl)`` with ``logits = cat(sc_1, sc_2)`` (1 x 2N)."""
    logits = torch.cat((sc_1, sc_2)).unsqueeze(0)
    lbl = torch.cat((torch.ones(1, sc_1.numel()), torch.zeros(1, sc_2.numel())), 1)
    return nn.BCEWithLogitsLoss()(logits, lbl)


def _inputs(n: int = 11, g: int = 4, d: int = 6, seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    node_graph = torch.cat([torch.arange(g), torch.randint(0, g, (n - g,), generator=gen)])
    local = torch.randn(n, d, generator=gen, requires_grad=True)
    glob = torch.randn(g, d, generator=gen, requires_grad=True)
    return local, glob, node_graph


def test_local_global_jsd_matches_reference_values_and_gradients() -> None:
    local, glob, node_graph = _inputs()
    loss = local_global_jsd(local, glob, node_graph)
    grads = torch.autograd.grad(loss, (local, glob))
    want = ref_local_global_loss(local, glob, node_graph)
    want_grads = torch.autograd.grad(want, (local, glob))
    torch.testing.assert_close(loss, want)
    for got, exp in zip(grads, want_grads, strict=True):
        torch.testing.assert_close(got, exp)
    # orthogonal graphs, each node along its own graph: negatives score 0 (their term is 0),
    # positives 5, so the loss is -(log 2 - softplus(-5)); pointing away costs more
    eye = torch.eye(4)
    aligned = local_global_jsd(5 * eye[node_graph], eye, node_graph)
    torch.testing.assert_close(aligned, -(math.log(2.0) - F.softplus(torch.tensor(-5.0))))
    assert local_global_jsd(-5 * eye[node_graph], eye, node_graph) > aligned + 4


def test_local_global_jsd_split_over_ranks_equals_the_whole_batch() -> None:
    """Two ranks of 3 graphs: each scores its nodes against all 6 graphs (offset) with the mean
    node count; the mean of the two local losses is the one-process loss, gradients too (the
    ranks hold 7 nodes each here; ``mean_nodes`` also covers unequal counts)."""
    gen = torch.Generator().manual_seed(1)
    local = torch.randn(14, 5, generator=gen, requires_grad=True)
    glob = torch.randn(6, 5, generator=gen, requires_grad=True)
    node_graph = torch.tensor([0, 1, 2, 0, 1, 2, 2, 3, 4, 5, 3, 4, 5, 5])
    whole = local_global_jsd(local, glob, node_graph)
    # rank 0 holds nodes 0-6 (graphs 0-2), rank 1 nodes 7-13 (graphs 3-5, local indices 0-2)
    parts = [local_global_jsd(local[:7], glob, node_graph[:7], offset=0, mean_nodes=7.0),
             local_global_jsd(local[7:], glob, node_graph[7:] - 3, offset=3, mean_nodes=7.0)]
    mean = (parts[0] + parts[1]) / 2
    torch.testing.assert_close(mean, whole)
    g_whole = torch.autograd.grad(whole, (local, glob))
    g_mean = torch.autograd.grad(mean, (local, glob))
    for got, exp in zip(g_mean, g_whole, strict=True):
        torch.testing.assert_close(got, exp)


def test_local_global_module_on_one_process_is_the_function() -> None:
    local, glob, node_graph = _inputs(seed=2)
    torch.testing.assert_close(LocalGlobalJSD()(local, glob, node_graph),
                               local_global_jsd(local, glob, node_graph))


def test_dgi_bce_matches_reference_values_and_gradients() -> None:
    gen = torch.Generator().manual_seed(3)
    pos = (3 * torch.randn(9, generator=gen)).requires_grad_()
    neg = (3 * torch.randn(9, generator=gen)).requires_grad_()
    loss = dgi_bce(pos, neg)
    want = ref_dgi_loss(pos, neg)
    torch.testing.assert_close(loss, want)
    for got, exp in zip(torch.autograd.grad(loss, (pos, neg)),
                        torch.autograd.grad(want, (pos, neg)), strict=True):
        torch.testing.assert_close(got, exp)
    # the JSD estimator is the same bound: 2 x BCE - 2 log 2 when both sides have P scores
    torch.testing.assert_close(jsd_mi_loss(pos, neg), 2 * loss - 2 * math.log(2.0))
    assert float(dgi_bce(torch.full((4,), 20.0), torch.full((4,), -20.0))) < 1e-8  # perfect


def test_mi_objectives_reject_bad_input() -> None:
    local, glob, node_graph = _inputs()
    with pytest.raises(ValueError, match="at least 2 graphs"):
        local_global_jsd(local, glob[:1], torch.zeros(local.shape[0], dtype=torch.long))
    with pytest.raises(ValueError, match="one graph index per node"):
        local_global_jsd(local, glob, node_graph[:-1])
    with pytest.raises(ValueError, match="must index the 4 graphs"):
        local_global_jsd(local, glob, node_graph + 1)
    with pytest.raises(ValueError, match="one D"):
        local_global_jsd(local, glob[:, :3], node_graph)
    with pytest.raises(ValueError, match="at least one"):
        dgi_bce(torch.zeros(0), torch.zeros(3))
    with pytest.raises(ValueError, match="at least one"):
        jsd_mi_loss(torch.zeros(2), torch.zeros(0))
