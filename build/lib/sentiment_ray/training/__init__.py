"""Training: the Ray Train driver and the per-worker training loop."""
