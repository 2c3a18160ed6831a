"""The listening-test web server: stdlib ``http.server`` on 127.0.0.1, one thread per request.

Routes (all JSON except the page and the audio):

* ``GET /``: the page (:mod:`waveloom.listening.page`);
* ``GET /api/config``: the modes on offer (A/B needs two folders) and the stimulus count;
* ``GET /api/trial?mode=likert|ab&rater=ID``: a new blind trial, ``{"trial", "mode",
  "audio": [url, ...], "answered"}``;
* ``GET /audio/<token>``: a stimulus by its opaque token (AIFF is sent as WAV, which every
  browser plays; other formats as they are);
* ``POST /api/answer``: ``{"trial", "rater", "fidelity", "musicality"}`` or
  ``{"trial", "rater", "choice": "a"|"b"|"none"}``; stored in SQLite, then the trial is closed.

The server binds to 127.0.0.1 only: ratings are collected on this machine (or through an SSH
tunnel), never exposed to a network. Its defences (Host/Origin checks, read timeouts of
:data:`READ_TIMEOUT`, bodies over :data:`MAX_BODY` bytes refused, JSON nested deeper than
:data:`MAX_JSON_DEPTH` refused) are :mod:`waveloom.web`'s, shared with the studio.
"""

from __future__ import annotations

import io
import re
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from waveloom.errors import ConfigError, DataError
from waveloom.listening.page import PAGE
from waveloom.listening.store import RatingStore
from waveloom.listening.trials import Scheduler
from waveloom.web import HOST, LocalHandler, LocalServer, serve_until_interrupted

DB_NAME = "listening.sqlite"
_RATER = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_CONTENT_TYPES = {".wav": "audio/wav", ".flac": "audio/flac", ".ogg": "audio/ogg",
                  ".opus": "audio/ogg", ".mp3": "audio/mpeg"}
#: Largest answer body accepted (an answer is a few dozen bytes).
MAX_BODY = 4096
#: Deepest JSON nesting accepted in an answer (an answer is one flat object).
MAX_JSON_DEPTH = 4


def default_db(dirs: list[str | Path]) -> Path:
    """``listening.sqlite`` in the parent of the first folder (next to the audio)."""
    return Path(dirs[0]).resolve().parent / DB_NAME


class ListeningServer(LocalServer):
    """An HTTP server holding the test's :class:`Scheduler` and :class:`RatingStore`."""

    def __init__(self, port: int, scheduler: Scheduler, store: RatingStore, quiet: bool = True):
        # Set before binding: a failed bind calls server_close(), which closes the store.
        self.scheduler, self.store = scheduler, store
        super().__init__(port, _Handler, quiet)

    def server_close(self) -> None:
        super().server_close()
        self.store.close()


class _Handler(LocalHandler):
    server: ListeningServer
    max_body = MAX_BODY
    max_json_depth = MAX_JSON_DEPTH

    # ------------------------------------------------------------------ routes

    def do_GET(self) -> None:  # noqa: N802 (stdlib naming)
        url = urlparse(self.path)
        if url.path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, PAGE.encode(), "text/html; charset=utf-8")
        elif url.path == "/api/config":
            sched = self.server.scheduler
            self._json(HTTPStatus.OK, {"modes": sched.modes, "stimuli": len(sched.stimuli),
                                       "conditions": len(sched.by_folder)})
        elif url.path == "/api/trial":
            self._trial(parse_qs(url.query))
        elif url.path.startswith("/audio/"):
            self._audio(url.path.removeprefix("/audio/"))
        else:
            self._error(HTTPStatus.NOT_FOUND, "not found")

    do_HEAD = do_GET

    def do_POST(self) -> None:  # noqa: N802
        if urlparse(self.path).path != "/api/answer":
            self._error(HTTPStatus.NOT_FOUND, "not found")
            return
        body = self._read_json()
        if body is None:
            return
        if not isinstance(body, dict):
            self._error(HTTPStatus.BAD_REQUEST, "body must be a JSON object")
            return
        self._answer(body)

    def _trial(self, query: dict[str, list[str]]) -> None:
        sched = self.server.scheduler
        mode = (query.get("mode") or ["likert"])[0]
        rater = (query.get("rater") or [""])[0]
        if not _RATER.match(rater):
            self._error(HTTPStatus.BAD_REQUEST, "rater must be 1-64 letters, digits, - or _")
            return
        if mode not in sched.modes:
            self._error(HTTPStatus.BAD_REQUEST, f"mode must be one of {sched.modes}")
            return
        trial = sched.next_likert(rater) if mode == "likert" else sched.next_ab(rater)
        self._json(HTTPStatus.OK, {
            "trial": trial.id,
            "mode": trial.mode,
            "audio": [f"/audio/{sched.token(sid)}" for sid in trial.stimuli],
            "answered": self.server.store.answers_by(rater),
        })

    def _answer(self, body: dict) -> None:
        sched, store = self.server.scheduler, self.server.store
        rater = body.get("rater")
        if not isinstance(rater, str) or not _RATER.match(rater):
            self._error(HTTPStatus.BAD_REQUEST, "missing or malformed rater")
            return
        trial_id = str(body.get("trial", ""))
        trial = sched.peek(trial_id)
        if trial is None:
            self._error(HTTPStatus.CONFLICT, "unknown or already answered trial")
            return
        if trial.rater != rater:
            self._error(HTTPStatus.FORBIDDEN, "this trial was given to another rater")
            return
        scores = [body.get("fidelity"), body.get("musicality")]
        choice = body.get("choice")
        # Validate before closing the trial, so a rejected answer can be corrected and resent.
        if trial.mode == "likert" and not all(type(v) is int and 1 <= v <= 5 for v in scores):
            self._error(HTTPStatus.BAD_REQUEST, "fidelity and musicality must be 1..5")
            return
        if trial.mode == "ab" and choice not in ("a", "b", "none"):
            self._error(HTTPStatus.BAD_REQUEST, "choice must be 'a', 'b' or 'none'")
            return
        if sched.take(trial_id) is None:  # answered concurrently
            self._error(HTTPStatus.CONFLICT, "unknown or already answered trial")
            return
        if trial.mode == "likert":
            store.add_rating(rater, trial.stimuli[0], *scores)
        else:
            store.add_preference(rater, trial.stimuli[0], trial.stimuli[1], choice)
        self._json(HTTPStatus.OK, {"ok": True, "answered": store.answers_by(rater)})

    def _audio(self, token: str) -> None:
        sched = self.server.scheduler
        sid = sched.tokens.get(token)
        if sid is None:
            self._error(HTTPStatus.NOT_FOUND, "no such stimulus")
            return
        path = sched.stimuli[sid].path
        try:
            if path.suffix.lower() in _CONTENT_TYPES:
                body, ctype = path.read_bytes(), _CONTENT_TYPES[path.suffix.lower()]
            else:  # AIFF and friends: browsers do not play them, WAV they all do
                import soundfile as sf

                data, sr = sf.read(str(path), dtype="float32", always_2d=True)
                buf = io.BytesIO()
                sf.write(buf, data, sr, format="WAV", subtype="PCM_16")
                body, ctype = buf.getvalue(), "audio/wav"
        except (OSError, RuntimeError) as err:
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"cannot read stimulus ({err})")
            return
        self._send(HTTPStatus.OK, body, ctype)


def _collect(dirs: list[str | Path], store: RatingStore):
    from waveloom.data.sources.folder import list_items

    stimuli, seen = [], set()
    for d in dirs:
        root = Path(d)
        if not root.is_dir():
            raise DataError(f"{root}: no such folder; give folders of audio files to compare")
        folder = str(root.resolve())
        if folder in seen:
            raise ConfigError(f"{root}: given twice; each folder is one condition")
        seen.add(folder)
        items = list_items(root)
        if not items:
            raise DataError(f"{root}: no audio files found (wav, flac, ogg, mp3, ...)")
        stimuli += store.add_stimuli(folder, [(it.name, it.path) for it in items])
    return stimuli


def make_server(dirs: list[str | Path], *, db: str | Path | None = None, port: int = 8000,
                seed: int | None = None, quiet: bool = True) -> ListeningServer:
    """A ready (not yet serving) server over ``dirs``; ``port=0`` picks a free port."""
    if not dirs:
        raise ConfigError("give at least one folder of audio files to rate")
    store = RatingStore(db if db is not None else default_db(dirs))
    try:
        scheduler = Scheduler(_collect(dirs, store), store, seed=seed)
        return ListeningServer(port, scheduler, store, quiet=quiet)
    except OSError as err:
        store.close()
        raise ConfigError(f"cannot listen on {HOST}:{port} ({err.strerror}); "
                          "choose another --port") from None
    except BaseException:
        store.close()
        raise


def serve(dirs: list[str | Path], *, db: str | Path | None = None, port: int = 8000,
          seed: int | None = None, quiet: bool = True) -> None:
    """Serve the listening test until Ctrl-C."""
    server = make_server(dirs, db=db, port=port, seed=seed, quiet=quiet)
    sched = server.scheduler
    print(f"listening test with {len(sched.stimuli)} clips from {len(sched.by_folder)} "
          f"folder(s) at {server.url}\nratings go to {server.store.path}; Ctrl-C to stop",
          flush=True)
    serve_until_interrupted(server)
