"""The end of a sweep: the best completed trial's model folder copied to `best/`, with its test results."""

from __future__ import annotations

import json
from pathlib import Path

from sentiment_ray.errors import SentimentRayError
from sentiment_ray.location import Location
from sentiment_ray.tuning.report import PARAMS, best_row


def export_best(rows: list[dict], cfg, tc, output_dir: Path, storage: Location) -> tuple[dict, Path]:
    """Copy the best completed trial's model folder to `best/` and write `best/test_results.json`."""
    from ray.train import Checkpoint

    from sentiment_ray.training.driver import copy_final_checkpoint, run_origin
    from sentiment_ray.tuning.space import trial_config

    best = best_row(rows, tc)
    if best is None:
        statuses = ", ".join(f"{r['trial_id']}: {r['status']}" for r in rows)
        raise SentimentRayError(f"no trial completed ({statuses}); see {output_dir / 'trials.md'}")
    best_dir = output_dir / "best"
    final = copy_final_checkpoint(Checkpoint(storage.inner(best["checkpoint"]).text), best_dir)
    params = {name: best[name] for name in PARAMS if name in best}
    trial_cfg = trial_config(cfg.to_dict(), params, output_dir / "trials" / best["trial_id"])
    results = {
        "trial_id": best["trial_id"],
        "params": params,
        "chosen_by": f"last {tc.metric} ({tc.mode}) among completed trials",
        "validation": final["validation"],
        "test": final["test"],
        **run_origin(trial_cfg),
    }
    (best_dir / "test_results.json").write_text(json.dumps(results, ensure_ascii=False, indent=2))
    return best, best_dir
