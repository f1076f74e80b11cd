"""The exception types of the data layer that callers are expected to catch."""

from __future__ import annotations

__all__ = ["DataError", "DecodeError"]


class DataError(ValueError):
    """A data source cannot be used at all (missing folder, no classes, bad manifest header, unknown sample).

    Problems with single files never raise this: they become :class:`~explorer.data.sources.Problem`
    entries so that one bad file does not stop a whole load. The message is meant to be shown to the
    user as is, so it names the folder or file and says what was expected.
    """


class DecodeError(ValueError):
    """A file or buffer that cannot be used as an image. ``str()`` is a short reason for the user."""
