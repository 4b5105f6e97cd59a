"""The `sentiment-ray` command line (`commands.py`: one function per subcommand; `parsers.py`: their flags)."""


def main(argv: list[str] | None = None) -> int:
    """The console script's entry point (`sentiment_ray.cli:main`), imported lazily: no work at import time."""
    from sentiment_ray.cli.commands import main as run

    return run(argv)
