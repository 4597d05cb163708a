"""Zero-shot and retrieval evaluation of two-tower models: hand-computed recall and chance
levels (checked by enumeration), zero-shot accuracy and prompt averaging, and evaluate_pair on
a tiny CLIP whose towers agree perfectly."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from anyssl.eval.pair import (
    evaluate_pair,
    retrieval_recall,
    zeroshot_accuracy,
    zeroshot_classifier,
)
from anyssl.methods.clip import CLIP
from anyssl.pair import KeyedViews, PairEncoder

# three items (a) and four captions (b): item 0 has two, items 1 and 2 one each
A = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
B = torch.tensor([[1.0, 0.2], [0.2, 1.0], [-0.3, -1.0], [-1.0, 0.5]])
OWNER = torch.tensor([0, 0, 1, 2])


def test_retrieval_recall_by_hand() -> None:
    # i2t: a0 -> b0 (own) first; a1 -> b1 (item 0), b3 (item 2), b0 (item 0), b2 (own): rank 4;
    # a2 -> b3 (own) first. t2i: b0 -> a0 first; b1 -> a1, a0 (own): rank 2;
    # b2 -> a2, a0, a1 (own): rank 3; b3 -> a2 (own) first.
    out = retrieval_recall(5 * A, B, OWNER, ks=(1, 2, 3, 4))  # cosine: the scale is irrelevant
    want = {"i2t_r1": 2 / 3, "i2t_r2": 2 / 3, "i2t_r3": 2 / 3, "i2t_r4": 1.0,
            "t2i_r1": 2 / 4, "t2i_r2": 3 / 4, "t2i_r3": 1.0, "t2i_r4": 1.0}
    for key, value in want.items():
        assert out[key] == pytest.approx(value), key
    # chance, M = 4 rows, m = (2, 1, 1): 1 - C(4 - m, k) / C(4, k) averaged over the items
    assert out["chance_i2t_r1"] == pytest.approx((2 / 4 + 1 / 4 + 1 / 4) / 3)
    assert out["chance_i2t_r2"] == pytest.approx((5 / 6 + 1 / 2 + 1 / 2) / 3)
    assert out["chance_i2t_r3"] == pytest.approx((1 + 3 / 4 + 3 / 4) / 3)
    assert out["chance_t2i_r1"] == pytest.approx(1 / 3) and out["chance_t2i_r4"] == 1.0


def test_items_without_rows_are_left_out_of_i2t() -> None:
    a = torch.cat([A, torch.tensor([[0.0, -1.0]])])  # a fourth item with no caption
    out = retrieval_recall(a, B, OWNER, ks=(1,))
    assert out["i2t_r1"] == pytest.approx(2 / 3)  # still over the three items with captions
    assert out["t2i_r1"] == pytest.approx(2 / 4)  # b2 now finds the new item first
    assert out["chance_t2i_r1"] == pytest.approx(1 / 4)


def _brute_force_chance(owner: list[int], n: int, k: int) -> tuple[float, float]:
    """Expected recall@k of a uniformly random ranking, by enumerating every ranking: of the
    M rows for each item with rows (i2t), of the N items for one row's owner (t2i)."""
    rankings = list(itertools.permutations(range(len(owner))))
    i2t = [sum(any(owner[j] == item for j in r[:k]) for r in rankings) / len(rankings)
           for item in sorted(set(owner))]
    item_rankings = list(itertools.permutations(range(n)))
    t2i = sum(0 in r[:k] for r in item_rankings) / len(item_rankings)
    return sum(i2t) / len(i2t), t2i


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_chance_levels_match_enumeration(k: int) -> None:
    owner = [0, 0, 0, 1, 2, 2]  # M = 6 rows over N = 4 items; item 3 has none
    g = torch.Generator().manual_seed(0)
    out = retrieval_recall(torch.randn(4, 3, generator=g), torch.randn(6, 3, generator=g),
                           torch.tensor(owner), ks=(k,))
    want_i2t, want_t2i = _brute_force_chance(owner, n=4, k=k)
    assert out[f"chance_i2t_r{k}"] == pytest.approx(want_i2t)
    assert out[f"chance_t2i_r{k}"] == pytest.approx(want_t2i)


def test_retrieval_bad_inputs() -> None:
    with pytest.raises(ValueError, match="b_owner"):
        retrieval_recall(A, B, torch.tensor([0, 0, 1, 3]))
    with pytest.raises(ValueError, match="share D"):
        retrieval_recall(A, torch.zeros(4, 3), OWNER)
    with pytest.raises(ValueError, match="ks"):
        retrieval_recall(A, B, OWNER, ks=(0,))


def test_zeroshot_accuracy_on_a_constructed_case() -> None:
    classifier = torch.eye(3)
    emb = torch.tensor([[1.0, 0, 0], [0, 1, 0.5], [0, 0.2, 1], [0.9, 0, 0.1]])
    labels = torch.tensor([0, 1, 1, -1])  # the last one is unlabeled: left out
    out = zeroshot_accuracy(emb, labels, classifier)
    assert out == pytest.approx({"top1": 2 / 3, "chance": 1 / 3, "majority": 2 / 3})
    emb7 = torch.tensor([[7.0, 6, 5, 4, 3, 2, 1], [1.0, 2, 3, 4, 5, 6, 7]])
    out7 = zeroshot_accuracy(emb7, torch.tensor([4, 0]), torch.eye(7))  # ranks 5 and 7
    assert out7 == pytest.approx({"top1": 0.0, "top5": 0.5, "chance": 1 / 7, "majority": 0.5})
    with pytest.raises(ValueError, match="labeled"):
        zeroshot_accuracy(emb, torch.full((4,), -1), classifier)
    with pytest.raises(ValueError, match="outside"):
        zeroshot_accuracy(emb, torch.tensor([0, 1, 3, 0]), classifier)


def test_zeroshot_classifier_averages_normalized_prompt_embeddings() -> None:
    vectors = {"a cat": [3.0, 0.0], "the cat": [0.0, 1.0], "a dog": [0.0, -2.0],
               "the dog": [0.0, -1.0]}
    calls: list[list[str]] = []

    def encode_texts(texts: list[str]) -> Tensor:
        calls.append(texts)
        return torch.tensor([vectors[t] for t in texts])

    out = zeroshot_classifier(encode_texts, ["cat", "dog"], ["a {}", "the {}"])
    r = 2**-0.5
    torch.testing.assert_close(out, torch.tensor([[r, r], [0.0, -1.0]]))  # not (3, 1)/|(3, 1)|
    assert calls == [["a cat", "the cat"], ["a dog", "the dog"]]
    with pytest.raises(ValueError, match=r"no '\{\}'"):
        zeroshot_classifier(encode_texts, ["cat"], ["a {}", "a photo"])
    with pytest.raises(ValueError, match="2 x D"):
        zeroshot_classifier(lambda t: torch.zeros(3, 2), ["cat"], ["a {}", "the {}"])


# ---- evaluate_pair on a tiny CLIP ------------------------------------------------------------
D, C = 6, 3
PROTOS = F.normalize(torch.randn(C, D, generator=torch.Generator().manual_seed(1)), dim=1)


class Tower(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.out_dim = 8
        self.net = nn.Linear(D, 8)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def _aligned_clip(seed: int = 0, aligned: bool = True) -> CLIP:
    """Both towers and projections share weights (when ``aligned``): an item and its caption
    embed identically."""
    torch.manual_seed(seed)
    image, text = Tower(), Tower()
    method = CLIP(PairEncoder({"image": image, "text": text}), KeyedViews({"image": None}),
                  embed_dim=5)
    if aligned:
        text.load_state_dict(image.state_dict())
        method.projections["text"].load_state_dict(method.projections["image"].state_dict())
    return method


def _dataset(n: int = 11, k: int = 3) -> list[tuple[dict[str, Tensor], int]]:
    """Items near their class prototype; item i has 1 + i % k captions (copies of the item,
    slightly perturbed; the remaining rows are zero = no caption); item 0 is unlabeled."""
    g = torch.Generator().manual_seed(2)
    items = []
    for i in range(n):
        label = i % C
        x = PROTOS[label] + 0.3 * torch.randn(D, generator=g)
        text = torch.zeros(k, D)
        text[: 1 + i % k] = x + 1e-3 * torch.randn(1 + i % k, D, generator=g)
        items.append(({"image": x, "text": text}, -1 if i == 0 else label))
    return items


def _split_rows(text: Tensor) -> tuple[Tensor, Tensor]:
    """B x K x D captions -> the M non-zero rows and their item index in the batch."""
    keep = text.abs().sum(-1) > 0  # B x K
    owner = torch.arange(text.shape[0])[:, None].expand_as(keep)[keep]
    return text[keep], owner


def _encode_texts(prompts: list[str]) -> Tensor:
    """A prompt 'c<k> ...' becomes class k's prototype (the text tower's input)."""
    return torch.stack([PROTOS[int(p.split()[-1][1:])] for p in prompts])


def test_evaluate_pair_on_perfectly_aligned_towers() -> None:
    method, data = _aligned_clip(), _dataset()
    method.train()
    out = evaluate_pair(method, _aligned_clip(seed=1, aligned=False), data,
                        encode_texts_fn=_encode_texts, class_names=["c0", "c1", "c2"],
                        templates=["a photo of {}", "a {}"], split_rows=_split_rows,
                        batch_size=4)  # 4 does not divide 11
    assert method.training and set(out) == {"pretrained", "random_init"}
    ret = out["pretrained"]["retrieval"]
    assert ret["i2t_r1"] == 1.0 and ret["t2i_r1"] == 1.0
    assert out["random_init"]["retrieval"]["t2i_r1"] < 1.0  # the unaligned copy is evaluated
    assert ret["chance_t2i_r1"] == pytest.approx(1 / 11)
    # m_i = 1 + i % 3 captions of M = 21: the chance level uses the split rows and owners
    m = torch.tensor([1 + i % 3 for i in range(11)], dtype=torch.float64)
    assert ret["chance_i2t_r1"] == pytest.approx(float((m / 21).mean()))
    zs = out["pretrained"]["zeroshot"]
    labels = [i % C for i in range(1, 11)]
    assert zs["chance"] == pytest.approx(1 / 3)
    assert zs["majority"] == pytest.approx(max(labels.count(c) for c in range(C)) / 10)
    # the zero-shot prediction is the nearest prototype, as the aligned towers see it
    with torch.no_grad():
        a = method.encode("image", torch.stack([x["image"] for x, _ in data[1:]]))
        protos = method.encode("text", PROTOS)
    want = float(((a @ protos.T).argmax(1) == torch.tensor(labels)).float().mean())
    assert zs["top1"] == pytest.approx(want) and want > 0.6


def test_evaluate_pair_defaults_to_one_row_per_item_and_dataset_attributes() -> None:
    class Data(torch.utils.data.Dataset):
        def __init__(self) -> None:
            self.class_names, self.prompt_templates = ["c0", "c1", "c2"], ["{}"]
            self.items = [({"image": x["image"], "text": x["image"]}, y) for x, y in _dataset()]

        def __len__(self) -> int:
            return len(self.items)

        def __getitem__(self, i: int) -> Any:
            return self.items[i]

        def tokenize(self, texts: list[str]) -> Tensor:
            return _encode_texts(texts)

    out = evaluate_pair(_aligned_clip(), None, Data(), batch_size=5)
    assert set(out) == {"pretrained"}
    assert out["pretrained"]["retrieval"]["i2t_r1"] == 1.0
    assert out["pretrained"]["retrieval"]["chance_i2t_r1"] == pytest.approx(1 / 11)
    assert 0 <= out["pretrained"]["zeroshot"]["top1"] <= 1


def test_evaluate_pair_bad_protocols() -> None:
    with pytest.raises(ValueError, match="class_names and encode_texts_fn"):
        evaluate_pair(_aligned_clip(), None, _dataset(), protocols=("zeroshot",))
    with pytest.raises(ValueError, match="valid: zeroshot, retrieval"):
        evaluate_pair(_aligned_clip(), None, _dataset(), protocols=("linear",))
    only = evaluate_pair(_aligned_clip(), None, _dataset(), protocols="retrieval",
                         split_rows=_split_rows)
    assert set(only["pretrained"]) == {"retrieval"}
