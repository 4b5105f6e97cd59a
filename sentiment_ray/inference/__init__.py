"""Inference: the predictor, batch scoring on Ray Data, and the Ray Serve deployment with its HTTP API."""

DEFAULT_BATCH_ROWS = 128
"""Most rows per predictor forward, whatever their length (here, without torch, so that the CLI's help shows it)."""
DEFAULT_BATCH_TOKENS = {"cpu": 2048, "cuda": 32768}
"""Most padded tokens per predictor forward: short reviews go in big batches, long ones in small batches."""
