"""Benchmarks: each writes results/bench/<name>.json (+ .md) with machine, versions, model, data and numbers."""
