"""Where a two-worker full fine-tune step goes: compute, gradient sync, optimizer, in a plain gloo group.

    python -m benchmarks.ddp_phases [--shape tiny] [--steps 30] [--batch-size 8] [--length 48]

Two processes (and, for the baseline, one), 1 torch thread each, no Ray: the tiny preset's model, label-scoring
loss on the last position (two head rows, like the library's strategy), random token ids. Per step, timed apart:
forward + backward; a dense fp32 all-reduce of every gradient (what DDP sends); the same in bf16 (what
`bf16_compress_hook` sends, with its casts); the library's row sync of the embedding
(`training/sparse_rows.TouchedRowSync`, on the dense gradient: the scan's cost) plus one flat all-reduce of the
rest; fused AdamW (HF's default).
Each sync runs on its own copy of the gradients, so the phases do not disturb each other.
Writes results/bench/<name>.{json,md}. Random-init model: this machine's costs, not Qwen2.5-1.5B's.
"""

from __future__ import annotations

import argparse
import os
import time

from benchmarks import common
from benchmarks.net import free_port

PHASES = ("compute", "dense_allreduce", "bf16_allreduce", "row_sync", "optimizer")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", default="tiny", choices=common.SHAPES)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--length", type=int, default=48, help="tokens per row (the offline corpus' mean is 48)")
    parser.add_argument("--name", default="ddp_phases")
    return parser.parse_args(argv)


def _synced(grads, fn):
    """Run a sync on copies of the gradients; returns its seconds."""
    copies = [g.clone() for g in grads]
    started = time.perf_counter()
    fn(copies)
    return time.perf_counter() - started


def _dense(grads, dtype):
    import torch.distributed as dist

    for g in grads:
        sent = g.to(dtype) if g.dtype != dtype else g
        dist.all_reduce(sent)
        g.copy_(sent)


def _rows(grads, embedding_index: int):
    import torch
    import torch.distributed as dist

    from sentiment_ray.training.sparse_rows import TouchedRowSync

    embedding = torch.nn.Parameter(torch.empty_like(grads[embedding_index]))  # a holder for the copied gradient
    embedding.grad = grads[embedding_index]
    TouchedRowSync(embedding)()
    rest = torch.cat([g.flatten() for i, g in enumerate(grads) if i != embedding_index])
    dist.all_reduce(rest)


def _worker(rank: int, world: int, port: int, args, folder: str, results) -> None:
    import torch
    import torch.distributed as dist
    import torch.nn.functional as F
    from transformers import AutoModelForCausalLM

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    embedding = model.get_input_embeddings().weight
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5, fused=True)
    generator = torch.Generator().manual_seed(rank)
    ids = torch.randint(0, embedding.shape[0] - 2000, (args.batch_size, args.length), generator=generator)
    labels = torch.randint(0, 2, (args.batch_size,), generator=generator)
    index = next(i for i, p in enumerate(params) if p is embedding)
    totals = dict.fromkeys(PHASES, 0.0)
    for step in range(args.steps + 3):  # 3 warm-up steps
        seconds = dict.fromkeys(PHASES, 0.0)
        started = time.perf_counter()
        hidden = model.model(input_ids=ids).last_hidden_state[:, -1]  # [batch, hidden]
        F.cross_entropy(hidden @ embedding[[100, 200]].T, labels).backward()  # two head rows, as label scoring
        seconds["compute"] = time.perf_counter() - started
        if world > 1:
            grads = [p.grad for p in params]
            seconds["dense_allreduce"] = _synced(grads, lambda g: _dense(g, torch.float32))
            seconds["bf16_allreduce"] = _synced(grads, lambda g: _dense(g, torch.bfloat16))
            seconds["row_sync"] = _synced(grads, lambda g: _rows(g, index))
        started = time.perf_counter()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        seconds["optimizer"] = time.perf_counter() - started
        if step >= 3:
            totals = {k: totals[k] + seconds[k] for k in PHASES}
    if rank == 0:
        results[world] = {k: 1000 * v / args.steps for k, v in totals.items()}
        results["grad_floats"] = sum(p.numel() for p in params)
    dist.destroy_process_group()


def step_rates(phases: dict[int, dict], batch_size: int) -> list[dict]:
    """Samples/s of a step built from measured phases: 1 worker, and 2 workers with each sync."""
    one = phases[1]["compute"] + phases[1]["optimizer"]
    two = phases[2]["compute"] + phases[2]["optimizer"]
    rows = [{"setup": "1 worker", "ms_per_step": one, "samples_per_s": 1000 * batch_size / one, "vs_1_worker": 1.0}]
    for sync in ("dense_allreduce", "bf16_allreduce", "row_sync"):
        ms = two + phases[2][sync]
        rate = 1000 * 2 * batch_size / ms
        rows.append({"setup": f"2 workers, {sync}", "ms_per_step": ms, "samples_per_s": rate})
        rows[-1]["vs_1_worker"] = rate / rows[0]["samples_per_s"]
    return rows


def main(argv: list[str] | None = None) -> None:
    import torch.multiprocessing as mp

    from sentiment_ray.models.loading import resolve_base

    args = parse_args(argv)
    folder = resolve_base(common.shape_base_folder(args.shape))
    results = mp.Manager().dict()
    for world in (1, 2):
        mp.spawn(_worker, args=(world, free_port(), args, folder, results), nprocs=world, join=True)
    phases = {1: dict(results[1]), 2: dict(results[2])}
    table = [{"workers": w, **{f"{k}_ms": v for k, v in phases[w].items()}} for w in (1, 2)]
    payload = {
        "model": f"random-init {args.shape}",
        "grad_floats": results["grad_floats"],
        "batch": f"{args.batch_size} rows x {args.length} tokens per worker",
        "steps": args.steps,
    }
    common.write_result(args.name, payload, table, notes=NOTES)
    common.append_table(
        args.name,
        "step_rates",
        "Steps built from the phases (compute + sync + optimizer)",
        step_rates(phases, args.batch_size),
    )
    print((common.RESULTS_DIR / f"{args.name}.md").read_text())


NOTES = [
    "random-init model, 1 torch thread per process, no Ray: where a step's time goes on this machine",
    "each sync runs on a copy of the same gradients; a real DDP step overlaps part of the dense all-reduce with"
    " backward (not the embedding's, whose gradient is the last one produced)",
]


if __name__ == "__main__":
    main()
