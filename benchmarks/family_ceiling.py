"""How often an evaluation classifier hears a melody's notes as the instrument that played them:
the ceiling of transfer_table.py's "heard as the family" column, judged on the renders alone.

Each ``--target FAMILY=FOLDER`` is a render-midi folder of the held-out pieces played by that
family's own instrument; every note's span (transfer_table's: the score's notes, 60 ms trimmed
from both ends, the first ``--seconds``) is cut out, zero-padded to the classifier's window and
classified, exactly as an output note is. Several ``--classifier`` files are compared on the
same notes, so a change to how the judge is trained is measured where it is used. No pitch
tracking and no model runs: seconds per classifier.

    python benchmarks/family_ceiling.py --pieces data/xlate-pieces6 \\
        --target string=data/xlate-target-40 --target flute=data/xlate-target-73 \\
        --classifier out/classifier-notes-v5.safetensors --seconds 20

Results: docs/translator.md (session 31).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from transfer_table import (
    clip_spans,
    family_hits,
    held_out_inputs,
    load_clip,
    named_pairs,
    note_spans,
)


def ceiling(classifier, targets: dict[str, str], pieces: Path, seconds: float | None
            ) -> dict[str, list[int]]:
    """{family: [notes heard as it, notes judged]} of each target's renders."""
    sr = classifier.cfg.sample_rate
    out = {}
    for family, folder in targets.items():
        hits = np.zeros(2, int)
        for wav, midi in held_out_inputs(Path(folder), pieces):
            audio = load_clip(wav, sr, seconds)
            spans = clip_spans(note_spans(midi), seconds)
            hits += np.array(family_hits(classifier, audio, sr, spans, family))
        out[family] = hits.tolist()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pieces", type=Path, required=True, help="folder of the held-out .mid")
    p.add_argument("--target", action="append", required=True,
                   help="FAMILY=render folder of the pieces in that family (repeat)")
    p.add_argument("--classifier", action="append", type=Path, required=True,
                   help="an evaluation classifier (waveloom train-classifier); repeat")
    p.add_argument("--seconds", type=float, default=None, help="only each piece's first SECONDS")
    args = p.parse_args()
    from waveloom.evaluate.classifier import load_classifier

    targets = named_pairs(args.target, "--target")
    rows = {}
    for path in args.classifier:
        model, metrics = load_classifier(path)
        rows[str(path)] = ceiling(model, targets, args.pieces, args.seconds)
        print(json.dumps({"classifier": str(path), "truncate": metrics.get("truncate", 0.0),
                          "epochs": metrics.get("epochs"),
                          "val_family_accuracy": metrics.get("val_family_accuracy"),
                          "heard": rows[str(path)]}), flush=True)
    print("| classifier | " + " | ".join(targets) + " |")
    print("|---|" + "---:|" * len(targets))
    for name, row in rows.items():
        print(f"| {name} | " + " | ".join(f"{h}/{n}" for h, n in row.values()) + " |")


if __name__ == "__main__":
    main()
