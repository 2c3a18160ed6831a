"""waveloom: music generation in the waveform domain.

The flow is ``audio files -> prepare -> cache -> train -> checkpoint -> generate -> audio``;
see ``docs/DESIGN.md`` in the repository for how the subpackages fit together.
"""

from waveloom.errors import AudioError, CheckpointError, ConfigError, DataError, WaveloomError

__version__ = "0.1.0"

__all__ = [
    "AudioError",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "WaveloomError",
    "__version__",
]
