"""Byte-level BPE tokenizer: row layout with fixed specials, truncation, CLIP's text cleaning,
deterministic training, JSON/file round trips, foreign tokenizer.json files and bad input."""

from __future__ import annotations

import json
import pickle
import random
from pathlib import Path

import pytest
import tokenizers
import torch
from tokenizers import models, pre_tokenizers, processors

from anyssl.modalities.text.tokenizer import (
    END,
    N_SPECIAL,
    PAD,
    START,
    Tokenizer,
    train_tokenizer,
)

WORDS = ["red", "blue", "cat", "dog", "smiling", "face", "with", "heart", "eyes", "grinning",
         "tree", "house", "the", "a", "of", "and", "big", "small", "green", "flag"]


def _corpus(n: int = 400, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 9))) for _ in range(n)]


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return train_tokenizer(_corpus(), vocab_size=400)


def test_training_is_deterministic() -> None:
    texts = _corpus(300, seed=1)
    a, b = train_tokenizer(texts, vocab_size=350), train_tokenizer(texts, vocab_size=350)
    assert a.to_str() == b.to_str()
    assert train_tokenizer(_corpus(300, seed=2), vocab_size=350).to_str() != a.to_str()


def test_rows_are_start_tokens_end_pad(tok: Tokenizer) -> None:
    texts = ["red cat", "a big green flag with a heart", "dog"]
    ids, truncated = tok.encode(texts, context_length=16)
    assert ids.shape == (3, 16) and ids.dtype == torch.long and not truncated.any()
    for row, n in zip(ids.tolist(), tok.n_tokens(texts), strict=True):
        assert row[0] == START and row[n + 1] == END
        assert all(t >= N_SPECIAL for t in row[1 : n + 1])
        assert all(t == PAD for t in row[n + 2 :])
    assert int(ids.max()) < tok.vocab_size


def test_ids_are_hf_ids_shifted(tok: Tokenizer) -> None:
    hf_ids = tok.hf.encode("smiling face", add_special_tokens=False).ids
    ids, _ = tok.encode(["smiling face"], context_length=10)
    assert ids[0, 1 : 1 + len(hf_ids)].tolist() == [h + N_SPECIAL for h in hf_ids]
    assert tok.vocab_size == tok.hf.get_vocab_size(with_added_tokens=True) + N_SPECIAL


def test_truncation_keeps_end_last(tok: Tokenizer) -> None:
    long_text = " ".join(WORDS)
    full = tok.n_tokens([long_text])[0]
    ids, truncated = tok.encode([long_text, "cat"], context_length=8)
    assert truncated.tolist() == [True, False] and full > 6
    ref, tr = tok.encode([long_text], context_length=full + 2)  # fits exactly
    assert not tr.any() and int(ref[0, -1]) == END
    assert ids[0, :7].tolist() == ref[0, :7].tolist() and int(ids[0, 7]) == END


def test_text_is_lowercased_and_whitespace_collapsed(tok: Tokenizer) -> None:
    a, _ = tok.encode(["  Red\tCAT \n with   Heart "], 12)
    b, _ = tok.encode(["red cat with heart"], 12)
    assert torch.equal(a, b)


@pytest.mark.parametrize("text", ["red cat with heart", "Grinning  FACE", "café ☕ 🐱 zebra!"])
def test_decode_inverts_encode(tok: Tokenizer, text: str) -> None:
    ids, _ = tok.encode([text], context_length=64)
    expected = " ".join(text.lower().split())
    assert tok.decode(ids[0]) == expected
    assert tok.decode(ids[0].tolist()) == expected


def test_unseen_characters_encode_without_unknown(tok: Tokenizer) -> None:
    ids, _ = tok.encode(["日本 ✓"], context_length=32)
    n = tok.n_tokens(["日本 ✓"])[0]
    assert n >= 4 and bool((ids[0, 1 : n + 1] >= N_SPECIAL).all())  # byte fallback


def test_single_string_is_one_row(tok: Tokenizer) -> None:
    ids, truncated = tok.encode("red cat", context_length=6)
    ref, _ = tok.encode(["red cat"], context_length=6)
    assert ids.shape == (1, 6) and truncated.shape == (1,) and torch.equal(ids, ref)


def test_empty_text_and_empty_list(tok: Tokenizer) -> None:
    ids, _ = tok.encode([""], context_length=4)
    assert ids.tolist() == [[START, END, PAD, PAD]]
    ids, truncated = tok.encode([], context_length=5)
    assert ids.shape == (0, 5) and truncated.shape == (0,)


def test_string_and_file_round_trip(tok: Tokenizer, tmp_path: Path) -> None:
    texts = ["a small dog", "green tree of hearts"]
    ref, _ = tok.encode(texts, 12)
    from_str = Tokenizer.from_str(tok.to_str())
    path = tmp_path / "tokenizer.json"
    tok.save(path)
    from_file = Tokenizer.from_file(path)
    for other in (from_str, from_file):
        assert other.vocab_size == tok.vocab_size and other.to_str() == tok.to_str()
        assert torch.equal(other.encode(texts, 12)[0], ref)


def test_pickles_for_data_loader_workers(tok: Tokenizer) -> None:
    other = pickle.loads(pickle.dumps(tok))
    assert other.to_str() == tok.to_str()
    assert torch.equal(other.encode(["red cat"], 8)[0], tok.encode(["red cat"], 8)[0])


def test_foreign_tokenizer_json_specials_are_not_added() -> None:
    vocab = {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "hello": 3, "world": 4}
    hf = tokenizers.Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    hf.pre_tokenizer = pre_tokenizers.Whitespace()
    hf.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 1), ("[SEP]", 2)])
    tok = Tokenizer.from_str(hf.to_str())
    ids, _ = tok.encode(["hello world"], context_length=6)
    assert ids.tolist() == [[START, 3 + N_SPECIAL, 4 + N_SPECIAL, END, PAD, PAD]]
    assert tok.vocab_size == 5 + N_SPECIAL


def test_from_file_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(ValueError, match=r"nope\.json.*tokenizer\.json") as err:
        Tokenizer.from_file(missing)
    assert "\n" not in str(err.value)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"not": "a tokenizer"}))
    with pytest.raises(ValueError, match=r"bad\.json"):
        Tokenizer.from_file(bad)
    with pytest.raises(ValueError, match="JSON string"):
        Tokenizer.from_str("{oops")


def test_bad_arguments(tok: Tokenizer) -> None:
    for length in (2, 0, 3.0):
        with pytest.raises(ValueError, match="context_length"):
            tok.encode(["cat"], context_length=length)
    with pytest.raises(ValueError, match="strings"):
        tok.encode([b"cat"], 8)
    with pytest.raises(ValueError, match="1-D"):
        tok.decode(torch.zeros(2, 3, dtype=torch.long))
    for texts in ([], "a caption", ["cat", 3]):
        with pytest.raises(ValueError, match="non-empty list"):
            train_tokenizer(texts)
    with pytest.raises(ValueError, match="vocab_size"):
        train_tokenizer(["cat"], vocab_size=100)


def test_vocab_size_caps_the_vocabulary() -> None:
    tok = train_tokenizer(_corpus(), vocab_size=300, min_frequency=1)
    assert tok.vocab_size == 300 + N_SPECIAL
    ids, _ = tok.encode(_corpus(50, seed=3), context_length=40)
    assert int(ids.max()) < tok.vocab_size
