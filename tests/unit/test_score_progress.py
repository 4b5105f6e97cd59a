"""The score job's progress line (sentiment_ray/inference/progress.py)."""

from sentiment_ray.inference.progress import duration, progress_line


def test_the_progress_line_gives_rows_done_of_total_the_rate_and_the_eta():
    assert progress_line(12_288, 100_000, 12.0, 12_288) == "12,288/100,000 rows (12%), 1,024 rows/s, ETA 1m 26s"
    assert progress_line(100_000, 100_000, 50.0, 100_000) == "100,000/100,000 rows (100%), 2,000 rows/s"


def test_rows_of_an_interrupted_run_count_as_done_but_not_in_the_rate():
    assert progress_line(60_000, 100_000, 10.0, 10_000) == "60,000/100,000 rows (60%), 1,000 rows/s, ETA 40s"
    assert progress_line(50_000, 100_000, 3.0, 0) == "50,000/100,000 rows (50%), actors starting"
    # before every file was read whole, the total is not known yet (records are counted while reading)
    assert progress_line(12_288, None, 12.0, 12_288) == "12,288 rows, 1,024 rows/s"
    assert progress_line(0, None, 3.0, 0) == "0 rows, actors starting"


def test_durations_read_as_minutes_and_seconds():
    assert (duration(59.4), duration(61), duration(3600)) == ("59s", "1m 01s", "60m 00s")
