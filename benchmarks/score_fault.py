"""A score job whose predictor actor gets SIGKILL mid-job, against the same job undisturbed.

    python -m benchmarks.score_fault --model-path runs/tiny/model [--rows 100000] [--kill-after-s 20]

Both runs: `run_scoring` (what `sentiment-ray score` runs) on the same CSV of --rows offline-corpus reviews, Ray
already up, the default (sized) layout, fp32 (so that the two runs' predictions can be compared exactly). In the
second, one predictor actor's process is killed with SIGKILL --kill-after-s seconds after its actors came up.
Reports rows written against records, duplicate and missing row keys, rows whose label or confidence differ from
the undisturbed run, and the extra wall time. Writes results/bench/<name>.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import signal
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd

from benchmarks import common
from benchmarks.score_job import corpus_texts


def predictor_actor_pids() -> list[int]:
    import ray
    from ray.util.state import list_actors

    # this process's Ray: with pytest-xdist, each worker has its own on this machine
    alive = list_actors(address=ray.get_runtime_context().gcs_address, filters=[("state", "=", "ALIVE")], limit=1000)
    return [a.pid for a in alive if a.class_name == "MapWorker(MapBatches(PredictorActor))"]


def run(folder: str, source: Path, output: Path, kill_after_s: float | None) -> dict:
    from sentiment_ray.inference.batch import ScoreOptions, read_output, run_scoring

    opts = ScoreOptions(folder, [str(source)], str(output), precision="fp32")
    outcome, killed = {}, {}
    started = time.monotonic()
    job = threading.Thread(target=lambda: outcome.update(summary=run_scoring(opts)), daemon=True)
    job.start()
    if kill_after_s is not None:
        while not predictor_actor_pids() and job.is_alive():
            time.sleep(0.2)
        time.sleep(kill_after_s)
        pids = predictor_actor_pids()
        if pids:
            os.kill(pids[0], signal.SIGKILL)
            killed = {"pid": pids[0], "at_s": round(time.monotonic() - started, 1)}
    job.join()
    seconds = time.monotonic() - started
    if "summary" not in outcome:
        return {"seconds": seconds, "killed": killed, "failed": True}
    out = read_output(output)
    return {"seconds": seconds, "killed": killed, "failed": False, "frame": out, "summary": outcome["summary"]}


def main(argv: list[str] | None = None) -> int:
    from sentiment_ray.runtime import init_ray

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-path", required=True)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--kill-after-s", type=float, default=20.0)
    parser.add_argument("--name", default="score_fault")
    args = parser.parse_args(argv)
    init_ray()
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "reviews.csv"
        pd.DataFrame({"text": corpus_texts(args.rows)}).to_csv(source, index=False)
        calm = run(args.model_path, source, Path(tmp) / "calm", None)
        hit = run(args.model_path, source, Path(tmp) / "killed", args.kill_after_s)
    row = {"rows": args.rows, "undisturbed s": round(calm["seconds"], 1), "with a killed actor s": None}
    row.update({"killed at s": hit["killed"].get("at_s"), "job failed": hit["failed"]})
    if not hit["failed"]:
        a, b = calm["frame"].set_index("row_key"), hit["frame"]
        row["with a killed actor s"] = round(hit["seconds"], 1)
        row["extra wall s"] = round(hit["seconds"] - calm["seconds"], 1)
        row["rows written"] = len(b)
        row["duplicate keys"] = int(b["row_key"].duplicated().sum())
        row["missing keys"] = len(set(a.index) - set(b["row_key"]))
        b = b.drop_duplicates("row_key").set_index("row_key").reindex(a.index)  # missing rows: NaN
        row["rows with another label"] = int((a["label"] != b["label"]).sum())
        row["max confidence difference"] = float(
            (a["confidence"].astype(float) - b["confidence"].astype(float)).abs().max()
        )
    notes = [
        "tiny model (runs/tiny/model): the numbers say what survives, not Qwen2.5-1.5B's speed",
        "layout: the default (sized), as the summary names: " + str(calm.get("summary", {}).get("actors")),
    ]
    path = common.write_result(args.name, {"model": args.model_path}, [row], notes)
    print(f"wrote {path} and {path.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
