"""A node of a two-node Ray cluster lost mid-training, against the same run undisturbed.

    python -m benchmarks.node_loss [--max-steps 40] [--kill-after-checkpoints 3] [--replace-after-s 10]

Two `ray start` nodes on this machine (2 CPUs each, token auth, separate temp dirs: benchmarks/ray_nodes.py). A
`sentiment-ray train` of the tiny model joins them with 2 workers placed STRICT_SPREAD (one per node) and
`train.max_failures=3`. Undisturbed first; then again, where the second node's processes get SIGKILL (what a
vanished spot node or `ray stop --force` on it leaves) once --kill-after-checkpoints checkpoints were saved, and a
replacement node joins --replace-after-s seconds later: STRICT_SPREAD needs two nodes, so until then the run
waits. Reports wall times, the step the run resumed from, steps redone, and both runs' test metrics.
Writes results/bench/<name>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import common
from benchmarks.ray_nodes import REPO, TwoNodeCluster, start_head, start_worker_node, stop_nodes

STEP_FIELDS = ("global_step", "resumed_from_step", "wall_time_s")


def train_command(output: Path, max_steps: int) -> list[str]:
    settings = {
        "model.name": "tiny",
        "data.source": "offline",
        "data.max_train_samples": 256,
        "data.val_size": 32,
        "data.test_size": 64,
        "data.max_length": 48,
        "train.max_steps": max_steps,
        "train.save_steps": 5,
        "train.batch_size": 4,
        "train.learning_rate": 1e-3,
        "train.max_failures": 3,
        "scaling.num_workers": 2,
        "scaling.placement_strategy": "STRICT_SPREAD",
    }
    command = [sys.executable, "-m", "sentiment_ray.cli.commands", "train", "--output-dir", str(output), "--quiet"]
    return command + [f"--set={key}={value}" for key, value in settings.items()]


def checkpoints(output: Path) -> list[Path]:
    """Ray Train's checkpoint folders of the run (one per `train.save_steps` = 5 steps), oldest first."""
    return sorted(p for p in (output / "ray").glob("*/checkpoint_*") if p.is_dir())


def run(cluster: TwoNodeCluster, output: Path, max_steps: int, fault=None) -> dict:
    """One training run joining the cluster; `fault(output)` runs beside it (in this process) until it returns."""
    env = {**cluster.env, "RAY_ADDRESS": cluster.gcs_address}
    started = time.monotonic()
    with open(output.with_suffix(".log"), "w") as log:
        proc = subprocess.Popen(train_command(output, max_steps), env=env, cwd=REPO, stdout=log, stderr=log)
        seen = fault(output, proc) if fault else {}
        proc.wait(timeout=1800)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        return {"seconds": seconds, "failed": True, "log": output.with_suffix(".log").read_text()[-3000:], **seen}
    train = json.loads((output / "train_results.json").read_text())
    test = json.loads((output / "test_results.json").read_text())["test"]
    return {"seconds": seconds, "failed": False, "train": {k: train.get(k) for k in STEP_FIELDS}, "test": test, **seen}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-steps", type=int, default=40)
    parser.add_argument("--kill-after-checkpoints", type=int, default=3)
    parser.add_argument("--replace-after-s", type=float, default=10.0)
    parser.add_argument("--name", default="node_loss")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="srn", dir="/tmp"))  # short: Ray's socket paths must stay under 107 bytes
    cluster, head = start_head(root)
    nodes = [head, start_worker_node(cluster, root / "node2", 2)]

    def lose_the_second_node(output: Path, proc: subprocess.Popen) -> dict:
        while len(checkpoints(output)) < args.kill_after_checkpoints and proc.poll() is None:
            time.sleep(0.2)
        os.killpg(nodes[1].pid, signal.SIGKILL)
        killed_at, saved = time.monotonic(), len(checkpoints(output))
        time.sleep(args.replace_after_s)
        nodes.append(start_worker_node(cluster, root / "node3", 2))
        return {"checkpoints saved at the loss": saved, "replacement joined after s": time.monotonic() - killed_at}

    try:
        calm = run(cluster, root / "calm", args.max_steps)
        hit = run(cluster, root / "lost", args.max_steps, lose_the_second_node)
    finally:
        stop_nodes(*nodes)
    rows = [row_of("undisturbed", calm), row_of("second node lost", hit)]
    notes = [
        "tiny model (random init), 256 training reviews of the offline corpus, 2 workers STRICT_SPREAD, a checkpoint"
        " every 5 steps: the numbers say what survives, not Qwen2.5-1.5B's speed",
        "both nodes run on this one machine: 'lost' is SIGKILL of the second node's process group",
    ]
    path = common.write_result(args.name, {"max_steps": args.max_steps}, rows, notes)
    shutil.rmtree(root, ignore_errors=True)
    print(f"wrote {path} and {path.with_suffix('.md')}")
    return 0


def row_of(case: str, result: dict) -> dict:
    row = {"run": case, "wall s": round(result["seconds"], 1), "failed": result["failed"]}
    row |= {k: v for k, v in result.items() if k not in ("seconds", "failed", "train", "test", "log")}
    if result["failed"]:
        return row | {"log tail": result["log"][-400:]}
    row |= result["train"]
    if "checkpoints saved at the loss" in result:  # a checkpoint every 5 steps: the loss came at step >= 5 × saved
        row["steps redone (at least)"] = (
            5 * result["checkpoints saved at the loss"] - result["train"]["resumed_from_step"]
        )
    return row | {f"test {k}": result["test"].get(k) for k in ("accuracy", "f1", "roc_auc")}


if __name__ == "__main__":
    raise SystemExit(main())
