"""``waveloom listen DIR_A DIR_B ...``: a blind listening test in the browser, or its report.

Serving and scoring live in :mod:`waveloom.listening`; this verb picks the ratings database
(``--db``, default beside the first folder) and prints or writes the report.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from waveloom.app.common import write_json
from waveloom.errors import ConfigError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    li = subparsers.add_parser(
        "listen", help="blind listening test in the browser, or its report",
        description="Serve a local page (127.0.0.1) for blind 1-5 ratings and A/B preferences "
        "of the clips in the given folders; ratings go to SQLite. --report prints MOS and win "
        "rates with confidence intervals.")
    li.add_argument("dirs", type=Path, nargs="*", metavar="DIR",
                    help="folders of audio, one per condition")
    li.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (0: any free)")
    li.add_argument("--db", type=Path, default=None,
                    help="ratings database (default: listening.sqlite beside the first DIR)")
    li.add_argument("--report", action="store_true", help="print MOS and A/B win rates")
    li.add_argument("--bootstrap", type=int, default=1000, help="resamples for the intervals")
    li.add_argument("--ci", type=float, default=0.95, help="interval level (default 0.95)")
    li.add_argument("--json", default=None, metavar="FILE",
                    help="with --report: also write the report as JSON ('-': stdout only)")
    li.add_argument("--seed", type=int, default=None, help="seed of the trial order")
    li.add_argument("--verbose", action="store_true", help="log every request")
    li.set_defaults(run=run)


def run(args: argparse.Namespace) -> int | None:
    from waveloom.listening import format_listening_report, listening_report, serve
    from waveloom.listening.report import check_interval_args
    from waveloom.listening.server import default_db

    check_interval_args(args.bootstrap, args.ci)
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port}: ports are 0..65535 (0: any free port)")
    db = args.db if args.db is not None else (default_db(args.dirs) if args.dirs else None)
    if args.report:
        if db is None:
            raise ConfigError("--report needs --db FILE (or the folders the test served)")
        report = listening_report(db, resamples=args.bootstrap, level=args.ci)
        if args.json != "-":
            print(format_listening_report(report))
        if args.json:
            from waveloom.evaluate.report import jsonable

            write_json(args.json, jsonable(report))
        return 0
    if not args.dirs:
        raise ConfigError("give the folders to compare: waveloom listen DIR_A DIR_B ...")
    serve(args.dirs, db=db, port=args.port, seed=args.seed, quiet=not args.verbose)
    return 0
