"""Where the time of a scoring forward goes: a torch.profiler table of one predictor case (used by bench.scoring).

Writes results/bench/scoring_profile.txt (1.5b-width; another shape: scoring_profile_<shape>.txt): the top ops
by self time, by name and by input shape, and the share of self time spent in matmuls.
"""

from __future__ import annotations

import os

import torch

from benchmarks import common

MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::linear", "aten::matmul")


def profile_case(shape: str, predictor, texts: list[str], batch_size: int, args) -> dict:
    """torch.profiler over a shape's bf16 best case: top ops by self time, and the share spent in matmuls."""
    from torch.profiler import ProfilerActivity, profile

    sample = texts[: 4 * batch_size]
    predictor.predict_batch(sample[:batch_size], batch_size=batch_size)
    cuda = args.device == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities, record_shapes=True) as prof:
        predictor.predict_batch(sample, batch_size=batch_size)
        common.timed(lambda: None, args.device)  # sync so queued GPU kernels land inside the profile
    key = "self_device_time_total" if cuda else "self_cpu_time_total"
    events = prof.key_averages()
    # on CPU every op's self time is its own work; on CUDA kernels are listed beside their ops, so a sum would
    # double-count: the share is left to the table there
    matmul = sum(e.self_cpu_time_total for e in events if e.key in MATMUL_OPS)
    share = None if cuda else matmul / sum(e.self_cpu_time_total for e in events)
    origin = common.provenance()
    header = (
        f"command: {origin['command']}\n"
        f"machine: {common.machine_line(origin['machine'])}; created {origin['created_at']}\n"
        f"{shape}, bf16, batch {batch_size}, {len(sample)} rows, params dtype {predictor.dtype}, "
        f"torch threads {torch.get_num_threads()}, cpu_count {os.cpu_count()}, "
        f"affinity {len(os.sched_getaffinity(0))}, device {args.device}\n"
        f"matmul ops ({', '.join(MATMUL_OPS)}): {share if share is None else f'{share:.1%}'} of self CPU time\n\n"
    )
    table = events.table(sort_by=key, row_limit=10)
    by_shape = prof.key_averages(group_by_input_shape=True).table(sort_by=key, row_limit=10)
    path = common.RESULTS_DIR / ("scoring_profile.txt" if shape == "1.5b-width" else f"scoring_profile_{shape}.txt")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + table + "\n\nBy input shape:\n" + by_shape)
    print(header + table, flush=True)
    return {"file": str(path), "rows": len(sample), "batch_size": batch_size, "matmul_self_time_share": share}
