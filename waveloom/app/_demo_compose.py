"""The demo page's compose section: a 10-s piece by the shipped chorale Music Transformer,
played by the shipped DDSP instruments (``waveloom compose``'s defaults, seed 0).

Skipped, with the reason printed and shown on the page, when the Music Transformer is not
shipped (it is trained apart from the instruments; docs/compose.md).
"""

from __future__ import annotations

import html
from pathlib import Path

#: Seconds of the demo's piece: short, so the section costs seconds on 2 cores.
DEMO_SECONDS = 10.0


def compose_section(model: Path, out: Path, section) -> str:
    """The page section (``section`` is the page's section writer): the piece's audio with its
    piano roll over spectrogram and a link to its MIDI, or the reason it was skipped."""
    from waveloom.app.compose import compose_piece

    if not Path(model).is_file():
        reason = f"skipped: no shipped Music Transformer at {model}"
        print(f"compose section {reason}")
        return f"<h2>Compose</h2><p>{html.escape(reason)} (see docs/compose.md).</p>"
    folder = out / "compose"
    piece = compose_piece(model, DEMO_SECONDS, folder, seed=0)
    mid, wav, png = piece.paths
    note = (f"A {DEMO_SECONDS:g}-s piece: events from the Music Transformer, each voice played "
            f"by a DDSP instrument. {piece.summary()}.")
    link = (f"<p><a href='{html.escape(str(mid.relative_to(out)))}'>the score (MIDI)</a></p>")
    return section("Compose: notes, then a neural performance", [
        (f"{DEMO_SECONDS:g} s, seed 0: {', '.join(piece.rendered.voices)}", wav, png)],
        out, note) + link
