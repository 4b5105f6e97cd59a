"""`python -m sentiment_ray.cli` runs the `sentiment-ray` command."""

from sentiment_ray.cli.commands import main

if __name__ == "__main__":
    raise SystemExit(main())
