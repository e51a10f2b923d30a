"""Errors whose message is one sentence a user can act on (shown instead of a stack trace)."""


class NotesQAError(Exception):
    """Base class: `str(error)` says what is wrong and how to fix it."""

    exit_code = 2


class StoreUnavailable(NotesQAError):
    """The Chroma server cannot be reached or the local index folder cannot be opened."""


class IndexMissing(NotesQAError):
    """There is no index yet (or it holds nothing)."""


class ModelMismatch(NotesQAError):
    """The index was built with another embedding model."""


class ModelUnavailable(NotesQAError):
    """The embedding model cannot be loaded without a download."""


class BadQuestion(NotesQAError):
    """The question is empty or unusable."""


class RecordsUnavailable(NotesQAError):
    """The conversations and feedback file (`APP_DB`) cannot be used; answers still work, they are not kept."""
