"""Exceptions that carry a user-facing message (the CLI prints them without a traceback)."""


class SentimentRayError(Exception):
    """Base class: the message names the file, row, field or setting that is wrong."""


class ConfigError(SentimentRayError):
    """A config value is missing, of the wrong type, or contradicts another one."""


class DataError(SentimentRayError):
    """An input file or dataset cannot be read, or has too many unusable rows."""


class ModelLoadError(SentimentRayError):
    """A base model, tokenizer or model folder cannot be found or loaded."""


class ModelFolderError(ModelLoadError):
    """A model folder's meta, files or config are wrong or unsafe; the message names the folder and the field."""


def closest(word: str, candidates) -> str | None:
    """The closest of `candidates` to a mistyped `word` (`--num-sample`, `train.lerning_rate`), or None.

    The one suggester of flags, config fields and option keys: each caller words its "did you mean".
    """
    import difflib

    close = difflib.get_close_matches(word, list(candidates), 1)
    return close[0] if close else None


def unknown_key(key: str, names) -> str:
    """`unknown key 'batch_sise' (did you mean 'batch_size'?)`: an options mapping's wrong key."""
    close = closest(key, names)
    return f"unknown key {key!r}" + (f" (did you mean {close!r}?)" if close else "")
