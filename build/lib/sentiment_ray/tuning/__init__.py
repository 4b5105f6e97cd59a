"""Tuning: the Ray Tune sweep, its report and the export of the best trial."""
