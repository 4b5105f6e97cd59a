"""Exact DDP gradient sync for the token embedding: only the rows a step touched travel between workers.

A full fine-tune trains Qwen's [151,936 x hidden] embedding (tied to the lm_head). DDP all-reduces its gradient
densely, every step: 78 MB at the tiny preset's hidden 128 and 933 MB at hidden 1,536 (fp32), although a step
touches only the rows of the tokens in its batches (a few hundred) plus, for label scoring, the label words' two
head rows. On this project's CPUs that all-reduce was most of a two-worker step (results/bench/training.md).

So the embedding is left out of DDP's buckets, its lookup backpropagates a sparse gradient, and after the last
backward of an optimizer step each worker sends the rows its gradient holds (indices + values, all-gathered) and
sums everyone's into a dense gradient, divided by the world size as DDP does. The result equals DDP's dense
average up to float summation order: no compression, no approximation, and rows no worker touched stay exactly
zero.
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


def sparse_lookups(model: torch.nn.Module) -> bool:
    """Make the input embedding's lookup backpropagate a sparse gradient (its rows only); False if it cannot."""
    embedding = model.get_input_embeddings()
    if not isinstance(embedding, torch.nn.Embedding):
        return False
    embedding.sparse = True
    return True


class TouchedRowSync:
    """Averages one parameter's gradient ([rows, width]) over the process group, sending only its touched rows.

    Call it on every rank at the same point (a collective), after the last backward of an optimizer step; with
    one worker (no process group) it only makes a sparse gradient dense. The gradient may be dense (rows found
    by `touched_rows`) or sparse, as `nn.Embedding(sparse=True)` and a tied `LabelRowsHead` leave it (rows read
    off its indices: no scan, and backward never builds the vocab-sized dense gradient). A sparse one is
    replaced by a dense gradient that this object keeps between steps and clears only where it last wrote, so
    the optimizer gets a dense gradient without a fresh 78 MB (tiny) to 933 MB (1.5B width) allocation per step.
    """

    def __init__(self, param: torch.nn.Parameter):
        self.param = param
        self._dense: torch.Tensor | None = None  # the kept gradient, once a sparse one arrived
        self._written = torch.empty(0, dtype=torch.int64, device=param.device)  # its rows that may be non-zero

    def __call__(self) -> int:
        """Average the gradient in place of `param.grad`; returns the rows this rank sent."""
        rows, values = self._local_rows()
        world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        all_rows, all_values = _all_gather_rows(rows, values, world)
        grad = self._cleared_gradient(rows)
        for sent_rows, sent_values in zip(all_rows, all_values, strict=True):
            grad.index_add_(0, sent_rows, sent_values.div_(world))
        if grad is self._dense:
            self._written = torch.cat(all_rows)
        return rows.numel()

    def _local_rows(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(rows [k] int64, values [k, width]) this rank's gradient holds; none for a rank that had no gradient."""
        grad = self.param.grad
        if grad is None:  # a rank whose batches never reached the parameter still takes part
            width = self.param.shape[1]
            return self._written[:0], torch.zeros(0, width, dtype=self.param.dtype, device=self.param.device)
        if grad.is_sparse:
            grad = grad.coalesce()  # one entry per row: repeated tokens are summed
            return grad.indices()[0], grad.values()
        rows = touched_rows(grad)
        return rows, grad.index_select(0, rows)

    def _cleared_gradient(self, rows: torch.Tensor) -> torch.Tensor:
        """The dense gradient to sum into, zero everywhere; it becomes `param.grad`."""
        grad = self.param.grad
        if grad is not None and not grad.is_sparse:
            # Only the rows this rank sent are non-zero: zeroing them clears it without a pass over every row.
            return grad.index_fill_(0, rows, 0.0)
        if self._dense is None:
            self._dense = torch.zeros_like(self.param)
        self.param.grad = self._dense.index_fill_(0, self._written, 0.0)
        return self._dense


def _all_gather_rows(rows: torch.Tensor, values: torch.Tensor, world: int) -> tuple[list, list]:
    """Every rank's (rows, values), padded to the longest with row 0 and zero values (which add nothing)."""
    if world == 1:  # one worker: nothing to exchange, only the sparse gradient to make dense
        return [rows], [values]
    counts = [torch.zeros(1, dtype=torch.int64, device=rows.device) for _ in range(world)]
    dist.all_gather(counts, torch.tensor([rows.numel()], dtype=torch.int64, device=rows.device))
    width = int(max(c.item() for c in counts))
    padded_rows = torch.zeros(width, dtype=torch.int64, device=rows.device)
    padded_rows[: rows.numel()] = rows
    padded_values = values.new_zeros(width, values.shape[1])
    padded_values[: rows.numel()] = values
    all_rows = [torch.empty_like(padded_rows) for _ in range(world)]
    all_values = [torch.empty_like(padded_values) for _ in range(world)]
    dist.all_gather(all_rows, padded_rows)
    dist.all_gather(all_values, padded_values)
    return all_rows, all_values
