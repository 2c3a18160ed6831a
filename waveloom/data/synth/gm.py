"""General MIDI programs mapped onto NSynth's instrument families and sources.

NSynth labels every instrument with one of 11 families (ids in NSynth's order: 0 bass, 1 brass,
2 flute, 3 guitar, 4 keyboard, 5 mallet, 6 organ, 7 reed, 8 string, 9 synth_lead, 10 vocal) and
one of 3 sources (0 acoustic, 1 electronic, 2 synthetic). A SoundFont preset is named by its
General MIDI program (0-127), whose 16 groups of 8 decide the family:

=======  ====================  ==========  =============================================
program  GM group              family      exceptions (and why)
=======  ====================  ==========  =============================================
0-7      piano                 keyboard
8-15     chromatic percussion  mallet
16-23    organ                 organ       22 harmonica -> reed (a free reed, no pipes)
24-31    guitar                guitar
32-39    bass                  bass
40-47    strings               string      47 timpani -> mallet (struck, not bowed)
48-55    ensemble              string      52 choir aahs, 53 voice oohs, 54 synth voice
                                           -> vocal
56-63    brass                 brass
64-71    reed                  reed
72-79    pipe                  flute
80-87    synth lead            synth_lead
88-95    synth pad             synth_lead  91 choir pad -> vocal, 92 bowed pad -> string
                                           (each imitates that family)
96-103   synth effects         synth_lead  sustained synthesiser textures
104-111  ethnic                guitar      plucked strings (sitar, banjo, shamisen, koto);
                                           108 kalimba -> mallet, 109 bagpipe -> reed,
                                           110 fiddle -> string, 111 shanai -> reed
112-118  percussive            mallet      pitched struck instruments (bells, steel drum,
                                           woodblock, taiko, toms)
119-127  sound effects         (none)      reverse cymbal, fret/breath noise, seashore,
                                           bird, telephone, helicopter, applause, gunshot:
                                           unpitched noises with no NSynth family, so
                                           ``render_notes`` skips them and lists them
=======  ====================  ==========  =============================================

Source: every SoundFont render is labelled **synthetic** (2). NSynth's acoustic and electronic
sources mean *recorded* from an acoustic or electric instrument; our notes are synthesised by a
sample-playback engine and were never recorded, so claiming "acoustic" for a SoundFont piano
would mislabel the provenance (a classifier of sources would learn the SoundFont, not the
instrument). The GM program and preset name are written beside each note for finer labels.
"""

from __future__ import annotations

import pretty_midi

from waveloom.data.sources import NSYNTH_FAMILIES

#: NSynth's sources, in NSynth's id order.
NSYNTH_SOURCES = ("acoustic", "electronic", "synthetic")

#: The source id every SoundFont render carries (see the module docstring).
RENDER_SOURCE = 2

#: NSynth's 10 note qualities, in the order of the ``qualities`` 0/1 list.
NSYNTH_QUALITIES = (
    "bright", "dark", "distortion", "fast_decay", "long_release",
    "multiphonic", "nonlinear_env", "percussive", "reverb", "tempo-synced",
)  # fmt: skip

_GROUP_FAMILY = (
    "keyboard", "mallet", "organ", "guitar", "bass", "string", "string", "brass",
    "reed", "flute", "synth_lead", "synth_lead", "synth_lead", "guitar", "mallet", None,
)  # fmt: skip

_EXCEPTIONS: dict[int, str | None] = {
    22: "reed", 47: "mallet", 52: "vocal", 53: "vocal", 54: "vocal",
    91: "vocal", 92: "string", 108: "mallet", 109: "reed", 110: "string", 111: "reed",
    119: None,
}  # fmt: skip

#: NSynth family name of each GM program (index = program), ``None`` for sound effects.
GM_FAMILY: tuple[str | None, ...] = tuple(
    _EXCEPTIONS.get(program, _GROUP_FAMILY[program // 8]) for program in range(128)
)


def family_of(program: int) -> str | None:
    """NSynth family name of GM ``program`` (0-127), or None where NSynth has no family."""
    return GM_FAMILY[program]


def family_id(family: str) -> int:
    """NSynth's integer id of a family name."""
    return NSYNTH_FAMILIES.index(family)


def instrument_index(program: int) -> int:
    """Rank of ``program`` among the GM programs of its family (stable for any subset rendered).

    So ``keyboard_synthetic_000`` is always program 0 (acoustic grand piano) whatever programs a
    run renders, and two renders with different program lists never rename an instrument.
    """
    family = GM_FAMILY[program]
    return sum(1 for p in range(program) if GM_FAMILY[p] == family)


def instrument_str(program: int) -> str:
    """NSynth-style instrument name ``<family>_<source>_<idx:03d>`` of GM ``program``."""
    family = GM_FAMILY[program]
    if family is None:
        raise ValueError(f"GM program {program} has no NSynth family")
    return f"{family}_{NSYNTH_SOURCES[RENDER_SOURCE]}_{instrument_index(program):03d}"


def gm_name(program: int) -> str:
    """The General MIDI name of ``program`` (e.g. 'Acoustic Grand Piano')."""
    return pretty_midi.program_to_instrument_name(program)


#: Default GM programs for the voice parts of a chorale, soprano first. Pieces rotate through
#: these ensembles in order so a render holds several timbres; a score with more parts than an
#: ensemble has entries gives the extra parts the last program.
ENSEMBLES: dict[str, tuple[int, ...]] = {
    "organ": (19, 19, 19, 19),  # church organ
    "strings": (40, 40, 41, 42),  # violin, violin, viola, cello
    "choir": (52, 52, 52, 52),  # choir aahs
    "winds": (73, 68, 71, 70),  # flute, oboe, clarinet, bassoon
    # Not in the rotation (below): the translator's built-in domains add a brass and a
    # keyboard ensemble to strings and winds (string, wind, brass, keyboard; docs/translator.md).
    "brass": (56, 56, 60, 57),  # trumpet, trumpet, French horn, trombone
    "keyboard": (0, 0, 0, 0),  # acoustic grand piano
}

#: The ensembles chorales rotate through by default and that ``program='every'`` renders, in
#: order (fixed, so earlier renders and recipes reproduce when ensembles are added).
ROTATION: tuple[str, ...] = ("organ", "strings", "choir", "winds")
