"""The graph papers' own protocols: GRACE's ``logreg_cv`` against a transcription of its
``eval.py``, its invariances and bad input, the protocol end to end on a random node split, and
GraphCL's unsupervised TU recipe (``--views recipe:graphcl-tu``): the graph itself against one
augmentation whose edge perturbation only drops edges."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import GridSearchCV
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import OneHotEncoder, normalize
from test_graph_augment import _batch
from test_graph_encoders import random_graph
from test_graph_methods import graph_batch

from anyssl.modalities.graph.augment import EdgePerturb
from anyssl.modalities.graph.data import NodeDataset
from anyssl.modalities.graph.encoders import GCN, GIN
from anyssl.modalities.graph.graphcl import GraphCL
from anyssl.modalities.graph.protocols import GRACE_C_GRID, logreg_cv
from anyssl.modalities.graph.recipes import GRAPHCL_TU_VIEWS, graph_recipe
from anyssl.views import OneOf, ViewGenerator, build_pipeline


# --- reference: GRACE eval.py label_classification, lines 28-33 and 50-73, on a given split ----
def ref_prob_to_one_hot(y_pred: np.ndarray) -> np.ndarray:
    ret = np.zeros(y_pred.shape, bool)  # np.bool in the original
    indices = np.argmax(y_pred, axis=1)
    for i in range(y_pred.shape[0]):
        ret[i][indices[i]] = True
    return ret


def ref_label_classification(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                             y_test: np.ndarray, c: np.ndarray) -> dict[str, float]:
    """``label_classification`` with its ``train_test_split`` replaced by the given split and
    its C grid (``2.0 ** np.arange(-10, 10)``) passed in, so a test can run part of it."""
    n = len(x_train)
    X = np.concatenate([x_train, x_test])
    Y = np.concatenate([y_train, y_test]).reshape(-1, 1)
    onehot_encoder = OneHotEncoder(categories="auto").fit(Y)
    Y = onehot_encoder.transform(Y).toarray().astype(bool)
    X = normalize(X, norm="l2")
    X_train, X_test, y_tr, y_te = X[:n], X[n:], Y[:n], Y[n:]
    logreg = LogisticRegression(solver="liblinear")
    clf = GridSearchCV(estimator=OneVsRestClassifier(logreg),
                       param_grid=dict(estimator__C=c), cv=5, verbose=0)
    clf.fit(X_train, y_tr)
    y_pred = ref_prob_to_one_hot(clf.predict_proba(X_test))
    return {"F1Mi": f1_score(y_te, y_pred, average="micro"),
            "F1Ma": f1_score(y_te, y_pred, average="macro"),
            "C": clf.best_params_["estimator__C"]}


def noisy_classes(n_train: int = 60, n_test: int = 120, seed: int = 0
                  ) -> tuple[np.ndarray, ...]:
    """3 overlapping, imbalanced Gaussian classes in 6-d: C matters and micro != macro."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(3, 6))
    y = rng.choice(3, n_train + n_test, p=[0.5, 0.3, 0.2])
    x = centers[y] + 1.2 * rng.normal(size=(len(y), 6)) + 3.0  # offset: normalizing matters
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


GRID = (0.25, 4.0)  # a short grid where the full one is not the point


# --- logreg_cv -------------------------------------------------------------------------------
def test_logreg_cv_matches_grace_eval() -> None:
    assert np.array_equal(GRACE_C_GRID, 2.0 ** np.arange(-10, 10))  # eval.py line 62
    c = 2.0 ** np.arange(-10, 10, 3)  # every 3rd value of it: 2^-10 .. 2^8 (time)
    xtr, ytr, xte, yte = noisy_classes()
    got = logreg_cv(xtr, ytr, xte, yte, C_grid=c)
    ref = ref_label_classification(xtr, ytr, xte, yte, c)
    assert got["micro_f1"] == pytest.approx(ref["F1Mi"], abs=1e-12)
    assert got["macro_f1"] == pytest.approx(ref["F1Ma"], abs=1e-12)
    assert got["C"] == ref["C"]
    assert got["top1"] == got["micro_f1"]
    assert got["macro_f1"] != pytest.approx(got["micro_f1"])  # the data set is imbalanced
    assert got["C"] not in (c[0], c[-1])  # the search chose, not the grid's edge


def test_logreg_cv_micro_f1_is_accuracy_and_scale_free() -> None:
    xtr, ytr, xte, yte = noisy_classes(seed=1)
    base = logreg_cv(xtr, ytr, xte, yte, C_grid=GRID)
    rng = np.random.default_rng(3)
    scaled = logreg_cv(xtr * rng.uniform(0.1, 10, (len(xtr), 1)), ytr,
                       xte * rng.uniform(0.1, 10, (len(xte), 1)), yte, C_grid=GRID)
    assert scaled == pytest.approx(base)  # rows are L2-normalized first
    raw = logreg_cv(xtr * 50, ytr, xte * 50, yte, normalize=False, C_grid=[1.0])
    clf = OneVsRestClassifier(LogisticRegression(solver="liblinear", C=1.0)).fit(
        xtr * 50, ytr[:, None] == np.arange(3))
    acc = float((clf.predict_proba(xte * 50).argmax(1) == yte).mean())
    assert raw["top1"] == pytest.approx(acc) and raw["C"] == 1.0


def test_logreg_cv_leaves_out_unlabelled_rows() -> None:
    xtr, ytr, xte, yte = noisy_classes(seed=2)
    extra = np.random.default_rng(0).normal(size=(7, 6))
    got = logreg_cv(np.concatenate([xtr, extra]), np.concatenate([ytr, -np.ones(7, int)]),
                    np.concatenate([extra, xte]), np.concatenate([-np.ones(7, int), yte]),
                    C_grid=GRID)
    assert got == pytest.approx(logreg_cv(xtr, ytr, xte, yte, C_grid=GRID))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"folds": 1}, "folds >= 2"),
    ({"C_grid": []}, "C_grid"),
    ({"train_x": np.ones((4, 6))}, "N x D features and N labels"),
    ({"test_x": np.ones((120, 5))}, "6 features but test_x 5"),
    ({"train_y": np.zeros(60, int)}, "one class"),
    ({"train_y": -np.ones(60, int)}, "no labelled sample"),
    ({"train_x": np.ones((3, 6)), "train_y": np.array([0, 1, 0])}, "at least that many"),
])
def test_logreg_cv_bad_input(kwargs: dict[str, object], match: str) -> None:
    xtr, ytr, xte, yte = noisy_classes()
    args = {"train_x": xtr, "train_y": ytr, "test_x": xte, "test_y": yte, **kwargs}
    with pytest.raises(ValueError, match=match):
        logreg_cv(**args)  # type: ignore[arg-type]


def test_random_node_split_evaluates_grace_protocol_end_to_end() -> None:
    """``split_mode="random"`` makes ``logreg_cv`` the first protocol, and the report runs it
    (GRACE's 10% / 80% split, a GCN at random init)."""
    from anyssl.eval.report import check_protocols, evaluate
    from anyssl.modalities.graph import MODALITY

    data = random_graph(300, torch.Generator().manual_seed(0), p=0.002)  # few edges
    data.y = data.x[:, :3].argmax(1)  # 3 classes, linear in the features
    train, test = (NodeDataset(data, s, split_mode="random") for s in ("train", "test"))
    assert train.eval_protocols[0] == "logreg_cv"
    assert NodeDataset(data, split_mode="public").eval_protocols == ("linear", "knn")
    assert check_protocols(["logreg_cv"]) == ("logreg_cv",)
    torch.manual_seed(0)
    res = evaluate(GCN(in_dim=data.x.shape[1], level="node", out_dim=16), None, train, test,
                   protocols=["logreg_cv"], collate=MODALITY.collate, device="cpu",
                   options={"logreg_cv": {"folds": 3}})
    metrics = res["pretrained"]["logreg_cv"]
    assert set(metrics) == {"top1", "micro_f1", "macro_f1", "C"}
    majority = float(torch.bincount(test.label).max()) / len(test.label)
    assert metrics["top1"] > majority + 0.1  # the labels are a function of the features


# --- GraphCL's unsupervised TU recipe --------------------------------------------------------
def test_graphcl_tu_recipe_is_the_graph_against_one_augmentation() -> None:
    assert graph_recipe("graphcl-tu", None) == list(GRAPHCL_TU_VIEWS)
    assert graph_recipe("GraphCL_TU", None) == list(GRAPHCL_TU_VIEWS)
    views = ViewGenerator([build_pipeline(s, "graph") for s in GRAPHCL_TU_VIEWS])
    views.manual_seed(0)
    batch = _batch(0)
    v1, v2 = views(batch)
    assert v1 is batch  # view 1 is the unaugmented graph (gsimclr.py: data vs data_aug)
    assert v2 is not batch and v2.num_graphs == batch.num_graphs
    second = build_pipeline(GRAPHCL_TU_VIEWS[1], "graph")
    assert isinstance(second, OneOf) and len(second.augmentations) == 4  # random4
    perturb = [a for a in second.augmentations if isinstance(a, EdgePerturb)]
    assert len(perturb) == 1 and perturb[0].add is False and perturb[0].ratio == 0.1


def test_graphcl_tu_edge_perturbation_only_drops_edges() -> None:
    """aug.py ``permute_edges``: 10% of each graph's edges dropped, none added."""
    spec = next(s for s in GRAPHCL_TU_VIEWS[1].split(" | ") if s.startswith("edge_perturb"))
    batch = _batch(1)
    out = build_pipeline(spec, "graph")(batch, torch.Generator().manual_seed(0))
    before = {tuple(e) for e in batch.edge_index.T.tolist()}
    assert {tuple(e) for e in out.edge_index.T.tolist()} <= before
    per_graph = torch.bincount(batch.batch[batch.edge_index[0]], minlength=batch.num_graphs)
    kept = torch.bincount(out.batch[out.edge_index[0]], minlength=batch.num_graphs)
    assert torch.equal(kept, per_graph - (per_graph.double() * 0.1).floor().long())


def test_graphcl_trains_on_the_graphcl_tu_views() -> None:
    views = ViewGenerator([build_pipeline(s, "graph") for s in GRAPHCL_TU_VIEWS])
    views.manual_seed(0)
    batch = graph_batch(8)
    torch.manual_seed(0)
    model = GraphCL(GIN(in_dim=batch[0].x.shape[1], hidden_dim=16, num_layers=2), views)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(8):
        loss, _ = model.training_step(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_graphcl_tu_recipe_refuses_node_level_data() -> None:
    class NodeLevel:
        level = "node"

    with pytest.raises(ValueError, match="graph-level data"):
        graph_recipe("graphcl-tu", NodeLevel())


def test_grace_defaults_to_its_random_split_where_the_data_takes_one(tmp_path: Path) -> None:
    """``method_data_args``: grace gets GRACE's random 10/10/80 split (and logreg_cv first) on
    a node-level data set that takes ``split_mode``; ``-d split_mode=public`` and other methods
    (dgi: DGI's public split) keep the graph's own masks."""
    from torch_geometric.data import Data

    from anyssl.build import build_parts

    n = 60
    y = torch.arange(n) % 3
    x = torch.nn.functional.one_hot(y, 3).float() + 0.1 * torch.randn(n, 3)
    edges = torch.stack([torch.arange(n), (torch.arange(n) + 3) % n])
    train_mask = torch.zeros(n, dtype=torch.bool)
    train_mask[:9] = True
    test_mask = ~train_mask
    torch.save(Data(x=x, edge_index=edges, y=y, train_mask=train_mask, test_mask=test_mask),
               tmp_path / "g.pt")
    data = str(tmp_path / "g.pt")
    grace = build_parts("graph", "grace", data=data)
    assert grace.train_set.split_mode == "random"
    assert grace.train_set.eval_protocols[0] == "logreg_cv"
    assert any("GRACE's random 10/10/80" in note for note in grace.notes)
    assert grace.data_args == {"split_mode": "random"}  # what the run's config.yaml records
    public = build_parts("graph", "grace", data=data, data_args={"split_mode": "public"})
    assert public.train_set.split_mode == "public"
    assert torch.equal(public.train_set.data.node_mask, train_mask)
    assert build_parts("graph", "dgi", data=data).train_set.split_mode == "public"
