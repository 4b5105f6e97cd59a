"""The `sentiment-ray` command line."""
