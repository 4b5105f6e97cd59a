"""The score-job benchmark's arithmetic: steady state as a slope over two file sizes, per layout (no Ray)."""

import pytest

from benchmarks.score_job import layout_summaries, parse_layouts, steady_state


def test_steady_state_separates_startup_from_rate():
    # 10 s of start-up, then 1,000 rows/s: 20k rows in 30 s, 100k rows in 110 s
    jobs = [{"rows": 20_000, "seconds": 30.0}, {"rows": 100_000, "seconds": 110.0}]
    result = steady_state(jobs)
    assert result["steady_reviews_per_s"] == pytest.approx(1000.0)
    assert result["startup_s"] == pytest.approx(10.0)


def test_layouts_parse_and_each_gets_its_own_ratio():
    assert parse_layouts("auto, 1x1,2x0.5") == [None, (1, 1.0), (2, 0.5)]  # auto: the job sizes its own layout
    jobs = [
        {"layout": "1x1", "rows": 100, "seconds": 11.0},
        {"layout": "2x1", "rows": 100, "seconds": 6.0},
        {"layout": "1x1", "rows": 300, "seconds": 31.0},  # 10 rows/s
        {"layout": "2x1", "rows": 300, "seconds": 16.0},  # 20 rows/s
    ]
    for job in jobs:
        job["reviews_per_s"] = job["rows"] / job["seconds"]
    by_layout = {s["layout"]: s for s in layout_summaries(jobs, in_process=20.0)}
    assert by_layout["1x1"]["steady_over_in_process"] == pytest.approx(0.5)
    assert by_layout["2x1"]["steady_over_in_process"] == pytest.approx(1.0)
    assert by_layout["2x1"]["startup_s"] == pytest.approx(1.0)
    # the largest file's whole rate, start-up included: 300 rows in 16 s against 20 rows/s in process
    assert by_layout["2x1"]["largest_file_over_in_process"] == pytest.approx(300 / 16 / 20)
