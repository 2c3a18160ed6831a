"""The project's own error types.

Every error a user can cause (a bad file, a bad config value, a checkpoint of another model) is
raised as one of these with a one-line message that names the culprit and the fix. The CLI
prints such errors as a single line instead of a traceback; anything else is a bug.
"""


class WaveloomError(Exception):
    """Base of all user-facing errors: the message is one line, meant for a person."""


class AudioError(WaveloomError):
    """An audio file cannot be read or written: missing, empty, truncated, corrupt, unsupported."""


class ConfigError(WaveloomError):
    """A config file, preset or ``key=value`` override is invalid."""


class CheckpointError(WaveloomError):
    """A checkpoint is missing, corrupt, unsafe, of another family or of another format version."""


class DataError(WaveloomError):
    """A data source or cache is missing, empty or inconsistent (e.g. another sample rate)."""
