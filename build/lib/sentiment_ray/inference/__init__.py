"""Inference: the predictor, batch scoring on Ray Data, and the Ray Serve deployment with its HTTP API."""
