"""``waveloom studio [--port P] [--no-browser] [--models DIR] [--out DIR]``: the local web app
over every model (:mod:`waveloom.studio`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    st = subparsers.add_parser(
        "studio", help="a local web app: generate, compose, transfer, interpolate, listen",
        description="Serves http://127.0.0.1:PORT/ with a panel per task. Models: every "
        "shipped checkpoint and those under --models (default runs/). Results, uploads and "
        "ratings go to --out. Jobs run one at a time in the background, with progress and "
        "a Cancel button; POST /api/generate serves scripts (docs/studio.md).")
    st.add_argument("--port", type=int, default=8800, help="port on 127.0.0.1 (default 8800)")
    st.add_argument("--no-browser", action="store_true", help="do not open a browser tab")
    st.add_argument("--models", type=Path, action="append", default=None,
                    help="a folder of your checkpoints (repeatable; default runs/)")
    st.add_argument("--out", type=Path, default=Path("out/studio"),
                    help="results, uploads and ratings (default out/studio)")
    st.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from waveloom.studio.server import make_server
    from waveloom.web import serve_until_interrupted

    server = make_server(args.out, args.models or [Path("runs")], port=args.port)
    print(f"waveloom studio at {server.url} ({len(server.entries)} models; results in "
          f"{args.out}); Ctrl-C to stop", flush=True)
    if not args.no_browser:
        import webbrowser

        webbrowser.open(server.url)
    serve_until_interrupted(server)
    return 0
