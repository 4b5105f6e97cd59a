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
