"""What the studio can do, on which models: the catalogue and one runner per panel.

The catalogue is every checkpoint in ``waveloom/assets`` and in the folders the user adds
(``--models DIR``), read by :mod:`waveloom.zoo` (family, vocabulary, card). Each family belongs
to the panel whose verb plays it:

* **generate**: the families ``waveloom generate`` draws notes from (WaveNet, SampleRNN, the
  GANs, the codec LM, DiffWave, latent diffusion, WaveGlow);
* **compose**: a Music Transformer, its voices played by the shipped DDSP instruments;
* **transfer**: a DDSP instrument playing an uploaded recording's pitch and loudness, or a
  translator playing it in one of its domains;
* **interpolate**: an autoencoder, mixing the codes of two uploaded sounds.

A request names a model by its file name or stem (``wavenet-small-notes``) or by its family
(``wavenet``: the first shipped model of that family). Parameters are checked here, with
one-line messages naming the field, before a job is queued.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from waveloom.errors import ConfigError, WaveloomError

GENERATE = ("wavenet", "samplernn", "wavegan", "specgan", "gansynth", "codec_lm", "diffwave",
            "latent_diffusion", "waveglow")
PANELS = {**{f: "generate" for f in GENERATE}, "music_transformer": "compose",
          "ddsp": "transfer", "translator": "transfer", "nsynth_ae": "interpolate",
          "spectral_ae": "interpolate"}
#: Longest generated / composed audio a request may ask for (seconds).
MAX_SECONDS = 60.0


@dataclass
class Entry:
    name: str
    path: Path
    family: str
    panel: str
    vocabulary: list[str]
    shipped: bool
    headline: str

    def public(self) -> dict:
        return {"name": self.name, "family": self.family, "panel": self.panel,
                "instruments": self.vocabulary, "shipped": self.shipped,
                "headline": self.headline}


def catalogue(folders: list[Path]) -> list[Entry]:
    """Every checkpoint found (shipped first) with the panel that plays it."""
    from waveloom.shipped import DEFAULT_NOTES
    from waveloom.zoo.card import card_of, display_name, find_checkpoints
    from waveloom.zoo.records import ASSETS

    entries = []
    for path in find_checkpoints([ASSETS, *folders]):
        try:
            card = card_of(path)
        except WaveloomError:  # an unreadable file in a user folder: not offered
            continue
        if card.family not in PANELS:
            continue
        head = card.headline()
        entries.append(Entry(display_name(path), path, card.family, PANELS[card.family],
                             list(card.vocabulary), card.shipped,
                             "" if head is None else f"{head.metric}: {head.value}"
                             f"{' ' + head.unit if head.unit else ''}"))
    # the shipped default note model first: a generate panel opens on the fast, measured one
    return sorted(entries, key=lambda e: (not e.shipped, e.path != DEFAULT_NOTES, e.name))


def resolve(entries: list[Entry], model: Any, panel: str) -> Entry:
    """The entry ``model`` names for ``panel`` (file name, stem or family); one-line error."""
    if not isinstance(model, str) or not model:
        raise ConfigError("model: give a model's name (GET /api/models lists them)")
    usable = [e for e in entries if e.panel == panel]
    for e in usable:
        if model in (e.name, e.path.name, e.path.stem):
            return e
    by_family = [e for e in usable if e.family == model]
    if by_family:
        return by_family[0]
    known = ", ".join(e.name for e in usable) or "none found"
    raise ConfigError(f"model {model!r}: not a {panel} model here (known: {known})")


def _number(params: dict, key: str, lo: float, hi: float, default: Any = None,
            integer: bool = False) -> Any:
    value = params.get(key, default)
    if value is None or value == "":
        return default
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and integer:
        ok = float(value).is_integer()
    if not ok or not math.isfinite(value) or not lo <= value <= hi:
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{key}: {value!r} must be {kind} in [{lo:g}, {hi:g}]")
    return int(value) if integer else float(value)


def generate_params(params: dict) -> dict:
    """The generate panel's fields, checked."""
    instrument = params.get("instrument")
    if instrument is not None and not isinstance(instrument, (int, str)):
        raise ConfigError("instrument: give a name from the model's list or its number")
    return {"pitch": _number(params, "pitch", 0, 127, integer=True),
            "instrument": instrument if instrument != "" else None,
            "seconds": _number(params, "seconds", 0.05, MAX_SECONDS, 2.0),
            "seed": _number(params, "seed", 0, 2**31 - 1, 0, integer=True),
            # None: the checkpoint's recorded temperature, else 1 (the runner resolves it)
            "temperature": _number(params, "temperature", 0.01, 10.0),
            "steps": _number(params, "steps", 1, 1000, integer=True),
            "cfg": _number(params, "cfg", 0.0, 20.0)}


def compose_params(params: dict) -> dict:
    return {"seconds": _number(params, "seconds", 1.0, MAX_SECONDS, 20.0),
            "seed": _number(params, "seed", 0, 2**31 - 1, 0, integer=True),
            "temperature": _number(params, "temperature", 0.01, 10.0, 1.0)}


def upload_name(params: dict, key: str, uploads: Path) -> Path:
    """An uploaded file's path from its name (as POST /api/upload answered it)."""
    name = params.get(key)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{key}: upload a sound first (POST /api/upload) and give its name")
    path = (uploads / Path(name).name).resolve()
    if path.parent != uploads.resolve() or not path.is_file():
        raise ConfigError(f"{key}: no uploaded file named {name!r}")
    return path


def transfer_params(params: dict, uploads: Path) -> dict:
    domain = params.get("domain")
    if domain is not None and not isinstance(domain, (int, str)):
        raise ConfigError("domain: give a name from the translator's list or its number")
    return {"audio": upload_name(params, "audio", uploads),
            "pitch_shift": _number(params, "pitch_shift", -24, 24, 0.0),
            "seed": _number(params, "seed", 0, 2**31 - 1, 0, integer=True),
            "domain": None if domain in (None, "") else domain}


def interpolate_params(params: dict, uploads: Path) -> dict:
    return {"a": upload_name(params, "a", uploads), "b": upload_name(params, "b", uploads),
            "steps": _number(params, "steps", 2, 11, 5, integer=True),
            "pitch": _number(params, "pitch", 0, 127, integer=True),
            "seconds": _number(params, "seconds", 0.1, 4.0, 2.0)}
