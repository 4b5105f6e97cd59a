"""Serve's shift check: each replica counts the rows it scores per (model, calibration) into windows of
`shift_window` rows and checks every full window against the calibration rows (sentiment_ray/shift.py).

A window is checked once, when it fills, and then starts empty (tumbling windows: each row is in one check, so
the false-alarm rate per check is the shift module's ALPHA). A shifted window is logged once and counted in
`/stats`; `/model` shows the latest verdict.
"""

from __future__ import annotations

import logging

from sentiment_ray.shift import ShiftTally, check_shift, warning_line

log = logging.getLogger(__name__)


class ShiftWindow:
    def __init__(self, calibration: dict | None, name: str | None, rows: int, threshold: float | None = None):
        """`threshold`: the coverage test's (the deployment's default target's threshold), None: no coverage test."""
        self.calibration, self.name, self.rows, self.threshold = calibration, name, rows, threshold
        self.reference = (calibration or {}).get("reference")
        self.tally = ShiftTally()
        self.checks, self.shifted_checks, self.last = 0, 0, None

    def add(self, confidences: list, lengths: list) -> None:
        """Count scored rows (confidence None: an error row, left out); check the window when it is full."""
        if not self.reference or self.rows <= 0:
            return
        self.tally = self.tally.merge(ShiftTally.of(self.reference, confidences, lengths, self.threshold))
        if self.tally.rows >= self.rows:
            self.last = check_shift(self.calibration, self.tally, self.name)
            self.checks += 1
            if self.last["shifted"]:
                self.shifted_checks += 1
                log.warning("%s (model window of %d rows)", warning_line(self.last), self.tally.rows)
            self.tally = ShiftTally()

    def stats(self) -> dict:
        if not self.reference:
            return check_shift(None, None)  # "no calibration summary: shift not checked"
        last = self.last
        if last and "source" in last:  # the calibration file's path says nothing a client needs
            last = {**last, "source": {k: v for k, v in last["source"].items() if k != "data"}}
        return {
            "window_rows": self.rows,
            "rows_in_current_window": self.tally.rows,
            "windows_checked": self.checks,
            "windows_shifted": self.shifted_checks,
            "last": last,
        }
