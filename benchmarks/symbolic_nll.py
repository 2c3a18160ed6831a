"""A symbolic model's bits per event on held-out pieces beside Witten-Bell n-grams (n = 1..5).

Both are scored on the same events: every event of every piece of the split once, the model in
overlapping windows of its training context (stride context/2, waveloom.evaluate.event_nll),
the n-grams fitted on the train split of the same corpus (waveloom.evaluate.ngram). Prints a
markdown table per split with the piece and event counts; ``--json`` writes every number. Run::

    .venv/bin/python benchmarks/symbolic_nll.py runs/mt-chorales/model.safetensors \\
        cache/sym-chorales --splits test,valid
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="a symbolic model's model.safetensors")
    parser.add_argument("data", type=Path, help="a symbolic corpus (waveloom data symbolic)")
    parser.add_argument("--splits", default="test,valid", help="held-out splits to score")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--json", type=Path, default=None, help="write every number here")
    parser.add_argument("--record", action="store_true",
                        help="add bits/event per split (and the best n-gram's, on the same "
                             "events) to the checkpoint's card (waveloom models)")
    args = parser.parse_args()

    from waveloom.data.symbolic import SymbolicCache
    from waveloom.device import set_threads
    from waveloom.evaluate.event_nll import symbolic_nll_report
    from waveloom.models.load import load_checkpoint

    set_threads(args.threads)
    model, run = load_checkpoint(args.checkpoint, map_location="cpu")
    cache = SymbolicCache(args.data)
    reports = []
    for split in [s.strip() for s in args.splits.split(",") if s.strip()]:
        began = time.perf_counter()
        report = symbolic_nll_report(model, cache, split, int(run.data.window))
        report["seconds"] = round(time.perf_counter() - began, 1)
        reports.append(report)
        print(_table(report, run.family))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(reports, indent=2) + "\n")
    if args.record:
        print(f"recorded in {_record(args, reports)}")


def _record(args: argparse.Namespace, reports: list[dict]) -> Path:
    """Bits/event of the model and of the best n-gram per split; the first split's model
    figure is the card's headline."""
    import sys

    from waveloom.zoo.records import Measurement, command_line, record

    command = command_line(sys.argv[1:], "benchmarks/symbolic_nll.py")
    path = None
    for k, report in enumerate(reports):
        data = (f"{report['pieces']} {report['split']} pieces of {args.data.name} "
                f"({report['events']:,} events)")
        order, best = min(report["ngram_bits_per_event"].items(), key=lambda kv: kv[1])
        for metric, value, head in (("bits/event", report["bits_per_event"], k == 0),
                                    (f"bits/event of the best n-gram ({order}-gram, "
                                     "Witten-Bell, same events)", best, False)):
            path = record(args.checkpoint, Measurement(
                metric=metric, value=round(float(value), 4), data=data, command=command,
                n=report["events"], higher_is_better=False, headline=head))
    return path


def _table(report: dict, family: str) -> str:
    lines = [f"\n{report['split']}: {report['pieces']} pieces, {report['events']:,} events "
             f"(model windows {report['context']}, stride {report['stride']}; "
             f"{report['seconds']} s)", "", "| model | bits/event |", "|---|---:|",
             f"| {family} | {report['bits_per_event']:.3f} |"]
    lines += [f"| {n}-gram (Witten-Bell) | {bits:.3f} |"
              for n, bits in report["ngram_bits_per_event"].items()]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
