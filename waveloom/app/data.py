"""``waveloom data render-notes | render-midi | symbolic`` and ``waveloom prepare``: data in.

render-notes / render-midi make the built-in offline data sets (SoundFont renders, in the
NSynth and MAESTRO layouts: :mod:`waveloom.data.synth`); prepare decodes any source once into
a training cache (:mod:`waveloom.data.prepare`); symbolic tokenizes MIDI into the event corpus
of the symbolic families (:mod:`waveloom.data.symbolic`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from waveloom.app.common import add_quiet_arg, int_list


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help="render the built-in offline data sets")
    dsub = data.add_subparsers(dest="data_verb", metavar="WHAT", required=True)
    rn = dsub.add_parser("render-notes", help="NSynth-style notes from a SoundFont")
    rn.add_argument("out", type=Path, help="output folder (NSynth json/wav layout)")
    rn.add_argument("--soundfont", type=Path, default=None,
                    help="a .sf2/.sf3 file (default: TimGM6mb.sf2 shipped by pretty_midi)")
    rn.add_argument("--programs", type=int_list, default=list(range(8)),
                    help="General MIDI programs, e.g. 0-7 or 0,24,40 (default 0-7)")
    rn.add_argument("--pitches", type=int_list, default=list(range(36, 85)),
                    help="MIDI pitches, e.g. 36-84 (default)")
    rn.add_argument("--velocities", type=int_list, default=[50, 100],
                    help="MIDI velocities, e.g. 50,100 (default)")
    rn.add_argument("--sr", type=int, default=16000, help="sample rate in Hz (default 16000)")
    add_quiet_arg(rn)
    rm = dsub.add_parser("render-midi", help="Bach chorales / MIDI files rendered, MAESTRO layout")
    rm.add_argument("out", type=Path, help="output folder (MAESTRO csv/midi/wav layout)")
    rm.add_argument("--chorales", type=int, default=0, help="how many of music21's Bach chorales")
    rm.add_argument("--midi", type=Path, default=None, help="a folder of .mid files to render too")
    rm.add_argument("--soundfont", type=Path, action="append", default=None,
                    help="a .sf2/.sf3 file (default TimGM6mb), or 'sung': a procedural choir "
                         "of formant voices; give it again to render every piece once per "
                         "SoundFont, e.g. for a transcriber")
    rm.add_argument("--sr", type=int, default=16000, help="sample rate in Hz (default 16000)")
    rm.add_argument("--program", default=None,
                    help="GM program 0-127 or an ensemble name (organ, strings, choir, "
                         "winds, brass, keyboard) for every melodic part; 'every': each piece "
                         "once per rotating ensemble (the first four); a comma list such as "
                         "strings,winds,brass,keyboard: each piece once per named ensemble, "
                         "labelled by it (a translator's domains). Default: chorales rotate "
                         "through the first four, files keep theirs")
    rm.add_argument("--voice", default=None, metavar="soprano|alto|tenor|bass",
                    help="render only this part of each piece (its n-th pitched part): solo "
                         "melodic lines, e.g. --voice soprano --program 40 (violin) for DDSP")
    rm.add_argument("--max-note-seconds", type=float, default=30.0,
                    help="cut notes held longer than this (a lost note-off), with a warning "
                         "naming the file (default 30)")
    add_quiet_arg(rm)
    sy = dsub.add_parser("symbolic", help="a symbolic (event-token) corpus for music_transformer",
                         description="Tokenize music21's Bach chorales, a MIDI folder and/or a "
                         "MAESTRO folder into OUT (tokens.npy + index.json), split by whole "
                         "piece; prints pieces per split, tokens and skipped files.")
    sy.add_argument("out", type=Path, help="corpus folder to write")
    sy.add_argument("--chorales", type=int, default=0,
                    help="how many of music21's Bach chorales (371: all)")
    sy.add_argument("--midi", type=Path, default=None, help="a folder of .mid/.midi files")
    sy.add_argument("--maestro", type=Path, default=None,
                    help="a MAESTRO folder (its csv/json gives the split)")
    add_quiet_arg(sy)
    pr = subparsers.add_parser("prepare", help="decode a source once into a training cache")
    pr.add_argument("src", type=Path, help="a folder of audio, an NSynth or a MAESTRO folder "
                    "(with --domains: the folder of domain links to create)")
    pr.add_argument("out", type=Path, help="cache folder to write")
    pr.add_argument("--format", choices=["auto", "folder", "nsynth", "maestro", "domains"],
                    default="auto", help="domains: one subfolder per instrument, labelled by "
                    "its name (a translator's domains)")
    pr.add_argument("--domains", nargs="+", default=None, metavar="NAME=FOLDER",
                    help="any folders as domains: links them as SRC/NAME, then prepares SRC "
                         "with --format domains")
    pr.add_argument("--sr", type=int, default=16000, help="cache sample rate (default 16000)")
    add_quiet_arg(pr)
    for parser in (rn, rm, sy, pr):
        parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int | None:
    if args.verb == "prepare":
        from waveloom.data.prepare import prepare

        if args.domains:
            from waveloom.data.sources.domains import link_domains

            link_domains(args.domains, args.src)
            args.format = "domains"
        print(prepare(args.src, args.out, format=args.format, sample_rate=args.sr,
                      progress=not args.quiet))
    elif args.data_verb == "symbolic":
        _symbolic(args)
    elif args.data_verb == "render-notes":
        from waveloom.data.synth import render_notes

        print(render_notes(args.out, soundfont=args.soundfont, programs=args.programs,
                           pitches=args.pitches, velocities=args.velocities,
                           sample_rate=args.sr, progress=not args.quiet))
    else:
        from waveloom.data.synth import render_midi

        print(render_midi(args.out, chorales=args.chorales, midi_dir=args.midi,
                          soundfont=args.soundfont, sample_rate=args.sr,
                          progress=not args.quiet, max_note_seconds=args.max_note_seconds,
                          program=args.program, voice=args.voice))
    return 0


def _symbolic(args: argparse.Namespace) -> None:
    """Build the corpus; each skipped file on stderr (one line each), then the summary."""
    import sys

    from waveloom.data.symbolic import build_symbolic

    cache = build_symbolic(args.out, chorales=args.chorales, midi_dir=args.midi,
                           maestro=args.maestro, progress=not args.quiet)
    for name, reason in cache.info.get("skipped", []):
        print(f"skipped {name}: {reason}", file=sys.stderr)
    print(cache.summary())
