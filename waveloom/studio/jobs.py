"""The studio's jobs: one worker process, live progress, cancellation that always works.

Every studio action (generate, compose, transfer, interpolate) runs a waveloom verb function
in a worker **process** (spawned once, kept while it is useful: the models it has loaded stay
loaded). The verbs already report long loops as tqdm bars; in the worker, stderr is a
:class:`ProgressSink` that reads each bar's description and percentage and sends them to the
server, which shows them as ``job.stage`` and ``job.progress``. No verb needs plumbing for it.

Cancelling terminates the worker and removes what the job had written; the next job starts a
fresh worker (a second or two of imports). A process, not a thread, because a verb's inner
loop (the fast WaveNet engine's C kernel, a DDSP render) has no place to stop cleanly from
outside, and an exception raised inside tqdm's output leaves tqdm's lock held for every later
bar of the process (measured: the next job hung).

One worker, so jobs run one at a time in submission order: a laptop's cores go to one job
instead of being shared by several.
"""

from __future__ import annotations

import io
import itertools
import multiprocessing as mp
import queue
import re
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: A tqdm bar as printed: "DESC:  45%|####      | 9/20 [...".
_BAR = re.compile(r"(?:^|\r)([^\r:|]*?):?\s*(\d{1,3})%\|")
#: Jobs kept in memory (the oldest finished ones are forgotten past this).
MAX_JOBS = 200
#: Seconds between the server's looks at a running job (progress, cancel).
POLL = 0.05


@dataclass
class Job:
    id: str
    kind: str
    params: dict
    status: str = "queued"  # queued | running | done | failed | cancelled
    stage: str = ""
    progress: float = 0.0
    files: list[str] = field(default_factory=list)
    error: str = ""
    created: float = field(default_factory=time.time)
    seconds: float = 0.0
    cancel_requested: bool = False

    def public(self) -> dict:
        """What the API shows of a job."""
        return {"id": self.id, "kind": self.kind, "params": self.params, "status": self.status,
                "stage": self.stage, "progress": round(self.progress, 3),
                "files": [f"/files/{name}" for name in self.files], "error": self.error,
                "seconds": round(self.seconds, 2)}


class ProgressSink(io.TextIOBase):
    """The worker's stderr: tqdm output in, ``("progress", stage, fraction)`` messages out."""

    def __init__(self, send) -> None:
        super().__init__()
        self.send, self.last = send, None

    def write(self, text: str) -> int:
        for desc, percent in _BAR.findall(text):
            now = (desc.strip(), min(1.0, int(percent) / 100.0))
            if now != self.last:
                self.last = now
                self.send(("progress", *now))
        return len(text)


def _worker(tasks: Any, results: Any) -> None:
    """The worker process: run each ``(kind, work)`` it is sent, answer what came of it."""
    import contextlib

    from waveloom.errors import WaveloomError
    from waveloom.studio import runners

    while (task := tasks.get()) is not None:
        kind, work = task
        try:
            with contextlib.redirect_stderr(ProgressSink(results.put)):
                files = getattr(runners, f"run_{kind}")(*work)
            results.put(("done", [str(p) for p in files]))
        except WaveloomError as err:
            results.put(("failed", str(err)))
        except Exception as err:  # the worker must answer whatever a job does
            results.put(("failed", f"{type(err).__name__}: {err}"))


class JobQueue:
    """Jobs run in one worker process; results land in ``out / <job id>``."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.jobs: dict[str, Job] = {}
        self._work: dict[str, tuple] = {}
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._ctx = mp.get_context("spawn")  # no fork of a threaded server
        self._process = self._tasks = self._results = None
        self._thread = threading.Thread(target=self._dispatch, name="waveloom-studio-jobs",
                                        daemon=True)
        self._thread.start()

    def submit(self, kind: str, params: dict, work: tuple) -> Job:
        """Queue ``runners.run_<kind>(*work)``; ``params`` is what the API shows of it. The
        last item of ``work`` must be the job's folder, which is appended here."""
        with self._lock:
            job = Job(id=f"{int(time.time())}-{next(self._ids)}", kind=kind, params=params)
            self.jobs[job.id] = job
            self._work[job.id] = (*work, self.out / job.id)
            self._forget_old()
        self._queue.put(job.id)
        return job

    def cancel(self, job_id: str) -> Job | None:
        job = self.jobs.get(job_id)
        if job is not None and job.status in ("queued", "running"):
            job.cancel_requested = True
            if job.status == "queued":
                job.status = "cancelled"
        return job

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Block until the job has finished (for the synchronous API and the tests)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        job = self.jobs[job_id]
        while job.status in ("queued", "running"):
            if deadline is not None and time.monotonic() > deadline:
                break
            time.sleep(POLL)
        return job

    def close(self) -> None:
        self._queue.put(None)
        self._stop_worker(graceful=True)

    # ------------------------------------------------------------------ internals

    def _forget_old(self) -> None:
        finished = [j for j in self.jobs.values() if j.status not in ("queued", "running")]
        for job in sorted(finished, key=lambda j: j.created)[: max(0, len(self.jobs) - MAX_JOBS)]:
            self.jobs.pop(job.id, None)

    def _start_worker(self) -> None:
        if self._process is not None and self._process.is_alive():
            return
        self._tasks, self._results = self._ctx.Queue(), self._ctx.Queue()
        self._process = self._ctx.Process(target=_worker, args=(self._tasks, self._results),
                                          name="waveloom-studio-worker", daemon=True)
        self._process.start()

    def _stop_worker(self, graceful: bool = False) -> None:
        if self._process is None:
            return
        if graceful and self._process.is_alive():
            self._tasks.put(None)
            self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout=5)
        for q in (self._tasks, self._results):
            q.close()
            q.cancel_join_thread()  # a killed worker's unread messages are dropped
        self._process = None

    def _dispatch(self) -> None:
        while (job_id := self._queue.get()) is not None:
            job = self.jobs.get(job_id)
            work = self._work.pop(job_id, None)
            if job is None or work is None or job.status == "cancelled":
                continue
            self._run(job, work)

    def _run(self, job: Job, work: tuple) -> None:
        job.status, t0 = "running", time.monotonic()
        self._start_worker()
        self._tasks.put((job.kind, work))
        while True:
            if job.cancel_requested:
                self._stop_worker()
                shutil.rmtree(self.out / job.id, ignore_errors=True)
                job.status = "cancelled"
                break
            if not self._process.is_alive():
                job.status, job.error = "failed", "the worker process stopped"
                self._process = None
                break
            try:
                message = self._results.get(timeout=POLL)
            except queue.Empty:
                continue
            if message[0] == "progress":
                job.stage, job.progress = message[1] or job.stage, message[2]
                continue
            if message[0] == "done":
                job.files = [str(Path(p).relative_to(self.out)) for p in message[1]]
                job.status, job.progress = "done", 1.0
            else:
                job.status, job.error = "failed", message[1]
            break
        job.seconds = time.monotonic() - t0
