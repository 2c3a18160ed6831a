"""``waveloom models [NAME] [--dir DIR]``: the shipped and your own checkpoints, with what
was measured of them (:mod:`waveloom.zoo`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from waveloom.errors import CheckpointError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "models", help="list the shipped and your checkpoints, or print one model's card",
        description="Without NAME: one line per checkpoint found in waveloom/assets and under "
                    "--dir (default runs/): family, size, parameters, vocabulary and the "
                    "headline measured figure. With NAME (a file name stem, or a path): its "
                    "card, with every measured figure and the command that reproduces it.")
    p.add_argument("name", nargs="?", default=None, help="a checkpoint's name or path")
    p.add_argument("--dir", type=Path, action="append", default=None,
                   help="also look here for checkpoints (default: runs/; repeatable)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from waveloom.zoo.card import card_of, find_checkpoints
    from waveloom.zoo.records import ASSETS
    from waveloom.zoo.render import card_text, listing

    paths = find_checkpoints([ASSETS, *(args.dir or [Path("runs")])])
    if args.name is None:
        cards, skipped = [], []
        for path in paths:
            try:
                cards.append(card_of(path))
            except CheckpointError as err:
                skipped.append(str(err))
        print(listing(cards))
        for line in skipped:
            print(f"skipped {line}")
        return 0
    print(card_text(card_of(_pick(args.name, paths))))
    return 0


def _pick(name: str, paths: list[Path]) -> Path:
    """The checkpoint ``name`` means: an existing path, else the one file of that stem (a
    run's ``model.safetensors`` also answers to its run folder's name; a shipped model wins a
    name it shares with a run, which its path still reaches)."""
    from waveloom.zoo.card import display_name
    from waveloom.zoo.records import ASSETS

    if Path(name).is_file():
        return Path(name)
    hits = [p for p in paths if name in (p.stem, p.name, display_name(p))]
    shipped = [p for p in hits if p.resolve().parent == ASSETS]
    if len(hits) == 1 or len(shipped) == 1:  # a shipped model wins a name it shares with a run
        return (shipped or hits)[0]
    known = ", ".join(sorted({display_name(p) for p in paths}))
    if not hits:
        raise CheckpointError(f"no checkpoint named {name!r}; known: {known or 'none'}")
    raise CheckpointError(f"{name!r} names {len(hits)} checkpoints ({', '.join(map(str, hits))});"
                          " give the path")
