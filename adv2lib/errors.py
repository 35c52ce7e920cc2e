"""The library's own errors: one base class, one line each, always with the remedy.

Every error the library raises because of *the user's input* (a bad option, missing or
damaged data, weights that do not fit) derives from :class:`Adv2Error`. Its message is one
line that says what is wrong and what to do; the command line prints it and exits with
status 2 (``--debug`` shows the traceback). Errors that are bugs of the library stay
ordinary Python exceptions, so they are never hidden behind a friendly line.

The subclasses also derive from the built-in exception a caller would expect
(``ValueError`` for a bad option, ``FileNotFoundError`` for a missing file), so code that
catches those keeps working.

>>> try:
...     raise ConfigError("steps must be an integer >= 1, got 2.5")
... except ValueError as err:
...     print(err)
steps must be an integer >= 1, got 2.5
"""
from __future__ import annotations

__all__ = [
    "Adv2Error", "ConfigError", "ConfigTypeError", "DataError", "DatasetNotFoundError", "CorruptDataError", "WeightsError",
    "WeightsNotFoundError", "WeightsMismatchError", "DeviceUnavailableError", "ResultsNotFoundError", "one_line",
]


def one_line(text: str) -> str:
    """``text`` with its lines joined by ``"; "`` (errors are printed as one line)."""
    return "; ".join(part.strip() for part in str(text).splitlines() if part.strip())


class Adv2Error(Exception):
    """Base class of every error caused by the user's input; the message is one line with the remedy."""

    def __init__(self, message: str):
        super().__init__(one_line(message))


class ConfigError(Adv2Error, ValueError):
    """An option or configuration value of the wrong type or out of range."""


class ConfigTypeError(ConfigError, TypeError):
    """An option name a config does not have, or a config of the wrong class (also a
    ``TypeError``, what Python raises for an unexpected keyword argument)."""


class DeviceUnavailableError(ConfigError, RuntimeError):
    """The requested device (e.g. ``cuda``) is not available on this machine."""


class DataError(Adv2Error):
    """A dataset that cannot be used as it is."""


class DatasetNotFoundError(DataError, FileNotFoundError):
    """A dataset is neither where it was said to be nor anywhere the library looks."""


class CorruptDataError(DataError, ValueError):
    """A data file exists but cannot be read (truncated, wrong format, unsupported pixel type)."""


class WeightsError(Adv2Error):
    """Model weights that cannot be used."""


class WeightsNotFoundError(WeightsError, FileNotFoundError):
    """Weights are neither on disk nor obtainable."""


class WeightsMismatchError(WeightsError, ValueError):
    """A weights file that is unreadable, or was trained for another architecture or victim."""


class ResultsNotFoundError(Adv2Error, FileNotFoundError):
    """Saved result tables a chapter reads are missing (the chapter that writes them has not run)."""
