"""The embedding's row-sparse gradient sync against DDP's dense average, in a real 2-process gloo group."""

from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from benchmarks.net import free_port
from sentiment_ray.models.strategies import LabelRowsHead
from sentiment_ray.training.sparse_rows import (
    TouchedRowSync,
    embedding_parameter_name,
    keep_out_of_ddp,
    sparse_lookups,
    touched_rows,
)

ROWS, WIDTH = 1000, 8


def _rank_gradient(rank: int) -> torch.Tensor:
    """Each rank touches its own rows (some shared with the other rank), as its batches' tokens would."""
    grad = torch.zeros(ROWS, WIDTH)
    rows = torch.tensor([3, 17, 999]) if rank == 0 else torch.tensor([17, 500])
    grad[rows] = torch.randn(len(rows), WIDTH, generator=torch.Generator().manual_seed(rank))
    return grad


def _worker(rank: int, port: int, results) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        param = torch.nn.Parameter(torch.zeros(ROWS, WIDTH))
        param.grad = _rank_gradient(rank)
        sent = TouchedRowSync(param)()
        dense = _rank_gradient(rank)
        dist.all_reduce(dense)  # what DDP does with the whole matrix
        dense /= 2
        results[rank] = (sent, param.grad.clone(), dense)
        empty = torch.nn.Parameter(torch.zeros(ROWS, WIDTH))  # a rank with no gradient at all still takes part
        if rank == 1:
            empty.grad = _rank_gradient(rank)
        TouchedRowSync(empty)()
        results[rank + 2] = empty.grad.clone()
    finally:
        dist.destroy_process_group()


def test_row_sync_equals_the_dense_average_on_every_rank():
    results = mp.Manager().dict()
    mp.spawn(_worker, args=(free_port(), results), nprocs=2, join=True)

    (sent0, synced0, dense0), (sent1, synced1, _) = results[0], results[1]
    assert (sent0, sent1) == (3, 2)  # only touched rows travel
    assert torch.allclose(synced0, dense0, atol=1e-7) and torch.equal(synced0, synced1)
    untouched = torch.ones(ROWS, dtype=torch.bool)
    untouched[[3, 17, 500, 999]] = False
    assert synced0[untouched].abs().sum() == 0 and synced0[~untouched].abs().sum() > 0
    assert torch.equal(results[2], results[3]) and torch.allclose(results[2], _rank_gradient(1) / 2)


def test_only_a_trainable_embedding_is_synced_by_rows():
    from transformers import Qwen2ForCausalLM

    from sentiment_ray.models.tiny import tiny_qwen2_config

    config = tiny_qwen2_config(vocab_size=64, tie_word_embeddings=True, pad_token_id=0, bos_token_id=0, eos_token_id=0)
    model = Qwen2ForCausalLM(config)
    assert embedding_parameter_name(model) == "model.embed_tokens.weight"  # tied lm_head: one parameter
    model.get_input_embeddings().weight.requires_grad_(False)  # LoRA: the embedding is frozen
    assert embedding_parameter_name(model) is None


def _tied_tiny_model():
    from transformers import Qwen2ForCausalLM

    from sentiment_ray.models.tiny import tiny_qwen2_config

    config = tiny_qwen2_config(vocab_size=64, tie_word_embeddings=True, pad_token_id=0, bos_token_id=0, eos_token_id=0)
    torch.manual_seed(0)  # the same initial weights on both ranks, as DDP's broadcast would make them
    return Qwen2ForCausalLM(config)


def _ddp_worker(rank: int, port: int, label_rows_head: bool, results) -> None:
    """Two DDP steps of a tied model whose embedding is kept out of DDP, looked up sparsely and synced by rows.

    With the library's LabelRowsHead the whole gradient is sparse; a plain lm_head adds a dense part."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        model = _tied_tiny_model()
        if label_rows_head:
            model.lm_head = LabelRowsHead(model.lm_head, rows=[0, 1], tied=True)
        weight = model.get_input_embeddings().weight
        ignored = keep_out_of_ddp(model, weight)
        assert sparse_lookups(model)
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        sync = TouchedRowSync(weight)
        steps = []
        for step_ids in ([[5, 6, 7, 8]], [[9, 10, 11, 12]]) if rank == 0 else ([[9, 10, 11, 5]], [[20, 21, 22, 23]]):
            model.zero_grad(set_to_none=True)  # as HF's Trainer does between optimizer steps
            ddp(input_ids=torch.tensor(step_ids)).logits[:, -1, :2].sum().backward()  # two head rows
            local = weight.grad.to_dense() if weight.grad.is_sparse else weight.grad.clone()
            assert weight.grad.is_sparse == label_rows_head
            sync()
            steps.append((local, weight.grad.clone(), model.model.norm.weight.grad.clone()))
        results[rank] = (ignored, steps)
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("label_rows_head", [True, False], ids=["sparse-gradient", "dense-gradient"])
def test_ddp_leaves_a_tied_embedding_to_the_row_sync(label_rows_head):
    """A tied lm_head is the embedding under a second name: DDP must not all-reduce it under either name. The
    sparse gradient becomes the dense average, and the next step's average holds none of this step's rows."""
    results = mp.Manager().dict()
    mp.spawn(_ddp_worker, args=(free_port(), label_rows_head, results), nprocs=2, join=True)

    (ignored, steps0), (_, steps1) = results[0], results[1]
    assert sorted(ignored) == ["lm_head.weight", "model.embed_tokens.weight"]
    for (local0, synced0, norm0), (local1, synced1, norm1) in zip(steps0, steps1, strict=True):
        assert not torch.allclose(local0, local1)  # DDP left each rank's own embedding gradient alone
        assert torch.allclose(synced0, (local0 + local1) / 2, atol=1e-7) and torch.equal(synced0, synced1)
        assert torch.equal(norm0, norm1)  # the rest of the model is still averaged by DDP


def test_touched_rows_finds_every_row_with_a_value_across_scan_slices():
    """Rows in several of the scan's slices, a lone value in the last column, a NaN row; -0.0 is no value."""
    grad = torch.zeros(5000, 300)  # 1,747 rows per 2 MB slice: three slices
    grad[0, 5] = 1e-30
    grad[1747, 299] = -2.0
    grad[4999] = float("nan")
    grad[3000, 0] = -0.0
    grad[3500] = torch.randn(300)
    assert touched_rows(grad).tolist() == [0, 1747, 3500, 4999]
    assert touched_rows(torch.zeros(7, 4)).numel() == 0


def test_one_worker_gets_the_dense_gradient_of_sparse_lookups_without_a_process_group():
    """No process group (one worker): the sparse gradient becomes the dense one plain lookups would give."""
    dense_model, sparse_model = _tied_tiny_model(), _tied_tiny_model()
    for model in (dense_model, sparse_model):
        model.lm_head = LabelRowsHead(model.lm_head, rows=[0, 1], tied=True)
    assert sparse_lookups(sparse_model)
    sync = TouchedRowSync(sparse_model.get_input_embeddings().weight)
    for ids, touched in (([[5, 6, 5, 8]], 5), ([[9, 10, 11, 12]], 6)):  # distinct tokens + the two label rows
        for model in (dense_model, sparse_model):
            model.zero_grad(set_to_none=True)
            model(input_ids=torch.tensor(ids)).logits[:, -1].sum().backward()
        assert sparse_model.get_input_embeddings().weight.grad.is_sparse
        assert sync() == touched  # a repeated token is one row
        expected = dense_model.get_input_embeddings().weight.grad
        assert torch.allclose(sparse_model.get_input_embeddings().weight.grad, expected, atol=1e-7)
