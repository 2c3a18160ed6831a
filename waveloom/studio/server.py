"""The studio's server: stdlib ``http.server`` on 127.0.0.1, one thread per request, one job
worker (:mod:`waveloom.studio.jobs`).

Routes (JSON unless said):

Jobs run in a worker process (:mod:`waveloom.studio.jobs`), so a cancel stops even a C loop.

* ``GET /``: the page (:mod:`waveloom.studio.page`);
* ``GET /api/models``: the catalogue, ``{"models": [{name, family, panel, instruments,
  shipped, headline}]}``;
* ``POST /api/jobs`` ``{"kind": "generate"|"compose"|"transfer"|"interpolate", "model", ...}``:
  queue a job (202, ``{"job": {...}}``); ``GET /api/jobs`` every job, newest first;
  ``GET /api/jobs/<id>`` one, with ``status``, ``stage``, ``progress`` (0-1) and ``files``;
  ``POST /api/jobs/<id>/cancel``;
* ``POST /api/generate`` ``{"model", "pitch", "instrument", "seconds", "seed", ...}``: for
  scripts, a generate job waited for: ``{"audio": "/files/<job>/sample-0.wav", "image",
  "job", "seconds"}``;
* ``POST /api/upload``: the raw bytes of a sound (``X-Filename`` header), kept under
  ``uploads/``: ``{"name", "url"}``;
* ``POST /api/rate`` ``{"file", "rater", "fidelity", "musicality"}``: a rating (1-5 each) into
  the listening store (``listening.sqlite`` beside the results, the format ``waveloom listen
  --report`` reads);
* ``GET /files/<path>``: a result or upload (WAV, PNG, MIDI), never outside the results folder.

Why the standard library and not FastAPI + uvicorn: it keeps the listening server's defences
(:mod:`waveloom.web`: Host/Origin checks, read timeouts, body limits), adds no dependency, and a
one-user local app with a dozen routes and one worker needs nothing an ASGI stack adds.
"""

from __future__ import annotations

import re
import time
from http import HTTPStatus
from pathlib import Path
from urllib.parse import unquote, urlparse

from waveloom.errors import ConfigError, WaveloomError
from waveloom.studio import tasks
from waveloom.studio.jobs import JobQueue
from waveloom.studio.page import PAGE
from waveloom.web import HOST, LocalHandler, LocalServer

#: Largest upload accepted (bytes): a few minutes of 16-bit stereo WAV.
MAX_UPLOAD = 32 * 1024 * 1024
#: Longest a synchronous POST /api/generate waits (seconds).
SYNC_TIMEOUT = 600.0
_TYPES = {".wav": "audio/wav", ".png": "image/png", ".mid": "audio/midi",
          ".json": "application/json", ".flac": "audio/flac", ".ogg": "audio/ogg",
          ".mp3": "audio/mpeg"}
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_RATER = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class StudioServer(LocalServer):
    """The studio's state: results folder, model folders, the job queue."""

    def __init__(self, port: int, out: Path, model_dirs: list[Path], quiet: bool = True):
        self.out, self.model_dirs = Path(out), list(model_dirs)
        self.uploads = self.out / "uploads"
        self.uploads.mkdir(parents=True, exist_ok=True)
        self.jobs = JobQueue(self.out)
        self.entries = tasks.catalogue(self.model_dirs)
        super().__init__(port, _Handler, quiet)

    def server_close(self) -> None:
        super().server_close()
        self.jobs.close()

    def submit(self, body: dict):
        """Check a job request and queue it; one-line ConfigError otherwise."""
        kind = body.get("kind")
        checks = {"generate": lambda b: tasks.generate_params(b),
                  "compose": lambda b: tasks.compose_params(b),
                  "transfer": lambda b: tasks.transfer_params(b, self.uploads),
                  "interpolate": lambda b: tasks.interpolate_params(b, self.uploads)}
        if kind not in checks:
            raise ConfigError(f"kind: {kind!r} must be one of {', '.join(checks)}")
        entry = tasks.resolve(self.entries, body.get("model"), kind)
        params = checks[kind](body)
        shown = {k: (v.name if isinstance(v, Path) else v) for k, v in params.items()}
        return self.jobs.submit(kind, {"model": entry.name, **shown}, (entry, params))


class _Handler(LocalHandler):
    server: StudioServer

    def do_GET(self) -> None:  # noqa: N802 (stdlib naming)
        path = urlparse(self.path).path
        if path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, PAGE.encode(), "text/html; charset=utf-8")
        elif path == "/api/models":
            self.server.entries = tasks.catalogue(self.server.model_dirs)
            self._json(HTTPStatus.OK, {"models": [e.public() for e in self.server.entries]})
        elif path == "/api/jobs":
            jobs = sorted(self.server.jobs.jobs.values(), key=lambda j: -j.created)
            self._json(HTTPStatus.OK, {"jobs": [j.public() for j in jobs]})
        elif path.startswith("/api/jobs/"):
            job = self.server.jobs.jobs.get(path.removeprefix("/api/jobs/"))
            if job is None:
                self._error(HTTPStatus.NOT_FOUND, "no such job")
            else:
                self._json(HTTPStatus.OK, {"job": job.public()})
        elif path.startswith("/files/"):
            self._file(unquote(path.removeprefix("/files/")))
        else:
            self._error(HTTPStatus.NOT_FOUND, "not found")

    do_HEAD = do_GET

    def do_POST(self) -> None:  # noqa: N802
        path = urlparse(self.path).path
        if path == "/api/upload":
            return self._upload()
        if path.startswith("/api/jobs/") and path.endswith("/cancel"):
            job = self.server.jobs.cancel(path.removeprefix("/api/jobs/").removesuffix("/cancel"))
            if job is None:
                return self._error(HTTPStatus.NOT_FOUND, "no such job")
            return self._json(HTTPStatus.OK, {"job": job.public()})
        routes = {"/api/jobs": self._queue, "/api/generate": self._generate,
                  "/api/rate": self._rate}
        if path not in routes:
            return self._error(HTTPStatus.NOT_FOUND, "not found")
        body = self._read_json()
        if body is None:
            return None
        if not isinstance(body, dict):
            return self._error(HTTPStatus.BAD_REQUEST, "body must be a JSON object")
        try:
            routes[path](body)
        except WaveloomError as err:
            self._error(HTTPStatus.BAD_REQUEST, str(err))

    # ------------------------------------------------------------------ routes

    def _queue(self, body: dict) -> None:
        self._json(HTTPStatus.ACCEPTED, {"job": self.server.submit(body).public()})

    def _generate(self, body: dict) -> None:
        job = self.server.submit({**body, "kind": "generate"})
        job = self.server.jobs.wait(job.id, timeout=SYNC_TIMEOUT)
        if job.status != "done":
            status = HTTPStatus.BAD_REQUEST if job.status == "failed" else \
                HTTPStatus.SERVICE_UNAVAILABLE
            return self._error(status, job.error or f"job {job.id} is {job.status}")
        files = job.public()["files"]
        self._json(HTTPStatus.OK, {
            "audio": next((f for f in files if f.endswith(".wav")), None),
            "image": next((f for f in files if f.endswith(".png")), None),
            "job": job.id, "seconds": round(job.seconds, 2), "params": job.params})

    def _rate(self, body: dict) -> None:
        from waveloom.listening.store import RatingStore

        rater, scores = body.get("rater"), [body.get("fidelity"), body.get("musicality")]
        if not isinstance(rater, str) or not _RATER.match(rater):
            raise ConfigError("rater: 1-64 letters, digits, - or _")
        if not all(type(v) is int and 1 <= v <= 5 for v in scores):
            raise ConfigError("fidelity and musicality must be integers 1..5")
        path = self._resolve(str(body.get("file", "")).removeprefix("/files/"))
        if path is None or path.suffix != ".wav":
            raise ConfigError("file: give a result's /files/... WAV")
        job = self.server.jobs.jobs.get(path.parent.name)
        # the condition a report groups by: the model that made the sound
        condition = f"studio:{job.params['model']}" if job else str(path.parent)
        store = RatingStore(self.server.out / "listening.sqlite")
        try:
            stimulus = store.add_stimuli(condition, [(f"{path.parent.name}/{path.stem}", path)])[0]
            store.add_rating(rater, stimulus.id, *scores)
        finally:
            store.close()
        self._json(HTTPStatus.OK, {"ok": True})

    def _upload(self) -> None:
        length = self.headers.get("Content-Length", "")
        if not length.strip().isdigit() or int(length) == 0:
            return self._refuse(HTTPStatus.BAD_REQUEST, "send the file's bytes as the body")
        if int(length) > MAX_UPLOAD:
            return self._refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                                f"file over {MAX_UPLOAD // 2**20} MB")
        raw_name = Path(unquote(self.headers.get("X-Filename", "upload.wav"))).name
        name = f"{int(time.time() * 1000)}-{_SAFE_NAME.sub('-', raw_name)[-80:] or 'upload'}"
        try:
            data = self.rfile.read(int(length))
        except TimeoutError:
            return self._refuse(HTTPStatus.REQUEST_TIMEOUT, "file not sent in time")
        path = self.server.uploads / name
        path.write_bytes(data)
        try:
            import soundfile as sf

            sf.info(str(path))
        except (RuntimeError, OSError) as err:
            path.unlink(missing_ok=True)
            return self._error(HTTPStatus.BAD_REQUEST, f"{raw_name}: not a readable sound "
                               f"({str(err).splitlines()[0]})")
        self._json(HTTPStatus.OK, {"name": name, "url": f"/files/uploads/{name}"})

    def _resolve(self, relative: str) -> Path | None:
        root = self.server.out.resolve()
        path = (root / relative).resolve()
        if root not in path.parents or not path.is_file():
            return None
        return path

    def _file(self, relative: str) -> None:
        path = self._resolve(relative)
        if path is None or path.suffix.lower() not in _TYPES:
            return self._error(HTTPStatus.NOT_FOUND, "no such file")
        self._send(HTTPStatus.OK, path.read_bytes(), _TYPES[path.suffix.lower()])


def make_server(out: str | Path, model_dirs: list[str | Path] | None = None, *,
                port: int = 8800, quiet: bool = True) -> StudioServer:
    """A ready (not yet serving) studio; ``port=0`` picks a free port."""
    try:
        return StudioServer(port, Path(out), [Path(d) for d in (model_dirs or [])], quiet)
    except OSError as err:
        raise ConfigError(f"cannot listen on {HOST}:{port} ({err.strerror}); choose another "
                          "--port") from None
