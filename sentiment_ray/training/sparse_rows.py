"""Exact DDP gradient sync for the token embedding: only the rows a step touched travel between workers.

A full fine-tune trains Qwen's [151,936 x hidden] embedding (tied to the lm_head). DDP all-reduces its gradient
densely, every step: 78 MB at the tiny preset's hidden 128 and 933 MB at hidden 1,536 (fp32), although a step
touches only the rows of the tokens in its batches (a few hundred) plus, for label scoring, the label words' two
head rows. On this project's CPUs that all-reduce was most of a two-worker step (results/bench/training.md).

So the embedding is left out of DDP's buckets, and after the last backward of an optimizer step each worker sends
the rows its gradient holds (indices + values, all-gathered) and sums everyone's into its own gradient, divided by
the world size as DDP does. The result equals DDP's dense average up to float summation order: no compression,
no approximation, and rows no worker touched stay exactly zero.
"""

from __future__ import annotations

import logging

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


def embedding_parameter_name(model: torch.nn.Module) -> str | None:
    """The qualified name of the model's trainable input-embedding weight, or None (frozen, e.g. LoRA)."""
    weight = model.get_input_embeddings().weight
    if not weight.requires_grad:
        return None
    return next(name for name, param in model.named_parameters() if param is weight)


def keep_out_of_ddp(model: torch.nn.Module, param: torch.nn.Parameter) -> list[str]:
    """Tell DDP (when it wraps `model` later) not to bucket `param`: its sync is ours. Returns the names ignored.

    Every name of the parameter is listed: DDP builds its buckets from each module's own parameters, so a tied
    lm_head would otherwise bring the embedding back in as `lm_head.weight`, and it was all-reduced densely and
    then synced by rows again (both exact, so only the time showed it).
    """
    from torch.nn.parallel import DistributedDataParallel

    names = [name for name, p in model.named_parameters(remove_duplicate=False) if p is param]
    DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, names)
    return names


SCAN_CHUNK_FLOATS = 1 << 19
"""Floats per slice of the row scan (2 MB fp32): small enough for the slice's |x| to stay in the CPU's cache."""


def touched_rows(grad: torch.Tensor) -> torch.Tensor:
    """Indices [k] (int64, ascending) of the rows of `grad` ([rows, width]) that hold any non-zero (or NaN) value.

    The max of |x| per row, slice by slice, instead of `grad.ne(0).any(dim=1)`: the boolean reduction and its
    full-size mask took 36 ms for the tiny preset's 151,936 x 128 gradient on one core of the development CPU,
    this takes 9 ms; the scan was most of a step's row sync (results/bench/ddp_phases.md).
    """
    row_max = torch.empty(grad.shape[0], dtype=grad.dtype, device=grad.device)
    step = max(1, SCAN_CHUNK_FLOATS // max(1, grad.shape[1]))
    for start in range(0, grad.shape[0], step):
        torch.amax(grad[start : start + step].abs(), dim=1, out=row_max[start : start + step])
    return row_max.nonzero().squeeze(1)  # NaN != 0: a NaN row is sent, so every rank sees it, as with DDP


def average_touched_rows(param: torch.nn.Parameter) -> int:
    """Average `param.grad` ([rows, width]) over the process group, sending only its non-zero rows.

    Every rank must call this at the same point (a collective). Returns the rows this rank sent.
    """
    if param.grad is None:  # a rank whose batches never reached the embedding still takes part
        param.grad = torch.zeros_like(param)
    grad = param.grad
    rows = touched_rows(grad)  # [k] int64
    world = dist.get_world_size()
    counts = [torch.zeros(1, dtype=torch.int64, device=grad.device) for _ in range(world)]
    dist.all_gather(counts, torch.tensor([rows.numel()], dtype=torch.int64, device=grad.device))
    width = int(max(c.item() for c in counts))
    padded_rows = torch.zeros(width, dtype=torch.int64, device=grad.device)  # padding: row 0 with zero values
    padded_rows[: rows.numel()] = rows
    values = torch.zeros(width, grad.shape[1], dtype=grad.dtype, device=grad.device)
    values[: rows.numel()] = grad.index_select(0, rows)
    all_rows = [torch.empty_like(padded_rows) for _ in range(world)]
    all_values = [torch.empty_like(values) for _ in range(world)]
    dist.all_gather(all_rows, padded_rows)
    dist.all_gather(all_values, values)
    # Only the rows this rank sent are non-zero, so zeroing them clears the whole gradient; scaling the gathered
    # values (k rows) instead of the gradient avoids two passes over all 151,936 rows (about 12 ms at hidden 128).
    grad.index_fill_(0, rows, 0.0)
    for sent_rows, sent_values in zip(all_rows, all_values, strict=True):
        grad.index_add_(0, sent_rows, sent_values.div_(world))
    return rows.numel()
