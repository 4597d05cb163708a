"""Queue: FIFO order, wrap-around, normalization, checkpointing, bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from anyssl.memory import Queue, SupportSet, nearest_neighbours


def _keys(b: int, dim: int = 4, start: int = 0) -> torch.Tensor:
    """Distinguishable keys: row i points mostly along a direction that encodes start + i."""
    g = torch.Generator().manual_seed(start)
    return torch.randn(b, dim, generator=g) * (torch.arange(b) + start + 1.0)[:, None]


def test_initial_keys_are_unit_vectors_and_pointer_zero() -> None:
    q = Queue(10, 4)
    assert q.keys.shape == (10, 4)
    torch.testing.assert_close(q.keys.norm(dim=1), torch.ones(10))
    assert int(q.ptr) == 0


def test_fifo_with_wrap_around() -> None:
    q = Queue(5, 4)
    first, second = _keys(3, start=0), _keys(3, start=10)
    q.enqueue(first)
    torch.testing.assert_close(q.keys[:3], F.normalize(first, dim=1))
    assert int(q.ptr) == 3
    q.enqueue(second)  # rows 3, 4, then wraps to row 0
    torch.testing.assert_close(q.keys[3:5], F.normalize(second[:2], dim=1))
    torch.testing.assert_close(q.keys[0], F.normalize(second[2], dim=0))
    torch.testing.assert_close(q.keys[1:3], F.normalize(first[1:], dim=1))  # oldest still there
    assert int(q.ptr) == 1


def test_batch_larger_than_queue_keeps_the_newest() -> None:
    q = Queue(4, 4)
    q.enqueue(_keys(1, start=50))  # ptr -> 1
    big = _keys(10, start=0)
    q.enqueue(big)
    assert int(q.ptr) == (1 + 10) % 4
    # the newest 4 keys, the oldest of them at ptr
    order = [(int(q.ptr) + i) % 4 for i in range(4)]
    torch.testing.assert_close(q.keys[order], F.normalize(big[-4:], dim=1))


def test_enqueue_detaches_and_casts_to_buffer_dtype() -> None:
    q = Queue(6, 4).double()
    k = torch.randn(2, 4, requires_grad=True)
    q.enqueue(k)
    assert not q.keys.requires_grad and q.keys.dtype == torch.float64
    torch.testing.assert_close(q.keys[:2], F.normalize(k.detach(), dim=1).double())


def test_state_dict_round_trip() -> None:
    q = Queue(7, 4)
    q.enqueue(_keys(5))
    state = q.state_dict()
    assert set(state) == {"keys", "ptr"}
    fresh = Queue(7, 4)
    assert not torch.equal(fresh.keys, q.keys)
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh.keys, q.keys)
    assert int(fresh.ptr) == 5
    fresh.enqueue(_keys(3, start=9))
    assert int(fresh.ptr) == 1


@pytest.mark.parametrize("bad", [torch.zeros(3, 5), torch.zeros(4), torch.zeros(2, 3, 4)])
def test_wrong_key_shape_raises(bad: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="B x 4"):
        Queue(8, 4).enqueue(bad)


def test_bad_size_raises() -> None:
    with pytest.raises(ValueError):
        Queue(0, 4)


# ---- nearest_neighbours and SupportSet (NNCLR) -----------------------------------------------
def _lightly_nearest(output: torch.Tensor, bank: torch.Tensor) -> torch.Tensor:
    """lightly's ``NNMemoryBankModule.forward`` (the bank as N x D rows), transcribed."""
    output_normed = torch.nn.functional.normalize(output, dim=1)
    bank_normed = torch.nn.functional.normalize(bank, dim=1)
    similarity_matrix = torch.einsum("nd,md->nm", output_normed, bank_normed)
    index_nearest_neighbours = torch.argmax(similarity_matrix, dim=1)
    return torch.index_select(bank, dim=0, index=index_nearest_neighbours)


def test_nearest_neighbours_match_lightly_and_carry_no_gradient() -> None:
    g = torch.Generator().manual_seed(0)
    z = torch.randn(20, 6, generator=g, requires_grad=True)
    bank = torch.randn(50, 6, generator=g) * torch.rand(50, 1, generator=g)  # unequal norms
    got = nearest_neighbours(z, bank)
    torch.testing.assert_close(got, _lightly_nearest(z.detach(), bank))
    assert not got.requires_grad
    assert got.data_ptr() != bank.data_ptr()  # a copy: later enqueues do not change it


def test_nearest_neighbours_search_only_the_valid_rows() -> None:
    g = torch.Generator().manual_seed(1)
    z = torch.randn(10, 4, generator=g)
    bank = torch.cat([torch.randn(5, 4, generator=g), F.normalize(z, dim=1)])  # 15 x 4
    torch.testing.assert_close(nearest_neighbours(z, bank), F.normalize(z, dim=1))
    got = nearest_neighbours(z, bank, valid=torch.tensor(5))
    torch.testing.assert_close(got, _lightly_nearest(z, bank[:5]))
    torch.testing.assert_close(nearest_neighbours(z, bank, valid=0), F.normalize(z, dim=1))


def test_nearest_neighbours_in_float32_under_autocast() -> None:
    g = torch.Generator().manual_seed(2)
    z = torch.randn(16, 8, generator=g)
    bank = torch.randn(40, 8, generator=g)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = nearest_neighbours(z.bfloat16(), bank)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, _lightly_nearest(z.bfloat16().float(), bank))


@pytest.mark.parametrize(("z", "bank"), [(torch.zeros(3, 4), torch.zeros(5, 3)),
                                         (torch.zeros(4), torch.zeros(5, 4)),
                                         (torch.zeros(3, 4), torch.zeros(0, 4))])
def test_nearest_neighbours_bad_shapes(z: torch.Tensor, bank: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="M x D"):
        nearest_neighbours(z, bank)


def test_support_set_counts_written_rows_and_checkpoints_them() -> None:
    s = SupportSet(8, 4)
    assert isinstance(s, Queue) and int(s.filled) == 0
    z = _keys(3, start=20)
    torch.testing.assert_close(s.nearest(z), F.normalize(z, dim=1))  # nothing written yet
    s.enqueue(_keys(5))
    assert int(s.filled) == 5
    torch.testing.assert_close(s.nearest(z), _lightly_nearest(z, s.keys[:5]))
    s.enqueue(_keys(5, start=5))  # wraps: all 8 rows written
    assert int(s.filled) == 8 and int(s.ptr) == 2
    assert set(s.state_dict()) == {"keys", "ptr", "filled"}
    fresh = SupportSet(8, 4)
    fresh.load_state_dict(s.state_dict())
    assert int(fresh.filled) == 8
    torch.testing.assert_close(fresh.nearest(z), _lightly_nearest(z, s.keys))
    big = SupportSet(4, 4)
    big.enqueue(_keys(10))
    assert int(big.filled) == 4
