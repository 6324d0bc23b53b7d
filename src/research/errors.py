"""Error types whose message is one line a researcher can act on."""

from __future__ import annotations


class ResearchError(Exception):
    """Base class: the CLI prints ``str(error)`` as one line and exits non-zero, without a traceback."""


class ConfigError(ResearchError):
    """The study configuration or codebook is invalid (message names the file and key or line)."""


class DataError(ResearchError):
    """A raw data file does not match the codebook.

    The message names the file, row, column, value and what was expected, e.g.
    ``data/raw/demo/survey.csv, row 17, column PERF_S1_RESP: value 7 is outside 1..5``.
    """

    def __init__(self, file, message: str, *, row: int | None = None, column: str | None = None,
                 value: object = None, expected: str | None = None):
        self.file, self.row, self.column, self.value, self.expected = file, row, column, value, expected
        parts = [str(file)]
        if row is not None:
            parts.append(f"row {row}")
        if column is not None:
            parts.append(f"column {column}")
        text = ", ".join(parts) + ": " + message
        if value is not None:
            text += f" (value {value!r}"
            text += f"; expected {expected})" if expected else ")"
        elif expected:
            text += f" (expected {expected})"
        super().__init__(" ".join(text.split()))


class AnalysisError(ResearchError):
    """Input that an analysis cannot handle (e.g. fewer than two experts); the message says why."""
