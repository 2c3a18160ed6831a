"""SQLite storage of listening-test stimuli and answers.

One file (by default ``listening.sqlite`` beside the first folder) accumulates every session, so
raters can come back later and several tests can share a database. Three tables:

* ``stimuli(id, folder, name, path)``: one row per audio file; ``folder`` is the folder's
  resolved path (the condition being rated), ``name`` the file's path inside it;
* ``ratings(rater, stimulus, fidelity, musicality, created)``: 1-5 absolute category ratings;
* ``preferences(rater, a, b, choice, created)``: one A/B trial; ``a``/``b`` are the stimuli in
  the order they were *presented*, ``choice`` is 'a', 'b' or 'none' (no preference).

Range checks live in the schema too (``CHECK``), so a bad row cannot be written by any client.
The connection is shared by the server's threads behind a lock.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from waveloom.errors import DataError

SCHEMA = """
CREATE TABLE IF NOT EXISTS stimuli (
    id INTEGER PRIMARY KEY,
    folder TEXT NOT NULL,
    name TEXT NOT NULL,
    path TEXT NOT NULL,
    UNIQUE (folder, name)
);
CREATE TABLE IF NOT EXISTS ratings (
    id INTEGER PRIMARY KEY,
    rater TEXT NOT NULL,
    stimulus INTEGER NOT NULL REFERENCES stimuli (id),
    fidelity INTEGER NOT NULL CHECK (fidelity BETWEEN 1 AND 5),
    musicality INTEGER NOT NULL CHECK (musicality BETWEEN 1 AND 5),
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS preferences (
    id INTEGER PRIMARY KEY,
    rater TEXT NOT NULL,
    a INTEGER NOT NULL REFERENCES stimuli (id),
    b INTEGER NOT NULL REFERENCES stimuli (id),
    choice TEXT NOT NULL CHECK (choice IN ('a', 'b', 'none')),
    created REAL NOT NULL
);
"""


@dataclass(frozen=True)
class Stimulus:
    id: int
    folder: str
    name: str
    path: Path


class RatingStore:
    """The SQLite database at ``path`` (created with its schema when missing)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False,
                                       isolation_level=None)
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as err:
            raise DataError(f"{self.path}: cannot open the ratings database ({err}); "
                            "pass a writable --db path") from None
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def _execute(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def add_stimuli(self, folder: str, files: list[tuple[str, Path]]) -> list[Stimulus]:
        """Register ``(name, path)`` files of ``folder``; returns them with their ids."""
        out = []
        with self._lock:
            for name, path in files:
                self._db.execute(
                    "INSERT INTO stimuli (folder, name, path) VALUES (?, ?, ?) "
                    "ON CONFLICT (folder, name) DO UPDATE SET path = excluded.path",
                    (folder, name, str(path)),
                )
                (sid,) = self._db.execute("SELECT id FROM stimuli WHERE folder = ? AND name = ?",
                                          (folder, name)).fetchone()
                out.append(Stimulus(int(sid), folder, name, Path(path)))
        return out

    def add_rating(self, rater: str, stimulus: int, fidelity: int, musicality: int) -> None:
        self._execute("INSERT INTO ratings (rater, stimulus, fidelity, musicality, created) "
                      "VALUES (?, ?, ?, ?, ?)", (rater, stimulus, fidelity, musicality,
                                                  time.time()))

    def add_preference(self, rater: str, a: int, b: int, choice: str) -> None:
        self._execute("INSERT INTO preferences (rater, a, b, choice, created) "
                      "VALUES (?, ?, ?, ?, ?)", (rater, a, b, choice, time.time()))

    def rating_counts(self, rater: str) -> dict[int, int]:
        """How often ``rater`` has rated each stimulus (id -> count)."""
        rows = self._execute("SELECT stimulus, COUNT(*) FROM ratings WHERE rater = ? "
                             "GROUP BY stimulus", (rater,))
        return {int(s): int(c) for s, c in rows}

    def preference_pairs(self, rater: str) -> list[tuple[int, int]]:
        return [(int(a), int(b)) for a, b in
                self._execute("SELECT a, b FROM preferences WHERE rater = ?", (rater,))]

    def answers_by(self, rater: str) -> int:
        (r,) = self._execute("SELECT COUNT(*) FROM ratings WHERE rater = ?", (rater,))[0]
        (p,) = self._execute("SELECT COUNT(*) FROM preferences WHERE rater = ?", (rater,))[0]
        return int(r) + int(p)

    def ratings(self) -> list[tuple[str, str, int, int]]:
        """``(folder, rater, fidelity, musicality)`` of every rating."""
        return self._execute("SELECT s.folder, r.rater, r.fidelity, r.musicality FROM ratings r "
                             "JOIN stimuli s ON s.id = r.stimulus ORDER BY r.id")

    def preferences(self) -> list[tuple[str, str, str, str]]:
        """``(folder of A, folder of B, choice, rater)`` of every A/B trial."""
        return self._execute("SELECT sa.folder, sb.folder, p.choice, p.rater FROM preferences p "
                             "JOIN stimuli sa ON sa.id = p.a JOIN stimuli sb ON sb.id = p.b "
                             "ORDER BY p.id")
