"""Blind, randomised and balanced trial scheduling for the listening test.

Blindness: the page only ever sees opaque random tokens (one per stimulus, drawn fresh for each
server run) and a random trial id; folder and file names stay on the server. The answer names
the trial, not the stimuli, so a client cannot attribute a rating to a clip of its choosing.

Balance: each rater gets the stimulus they have rated least often (ties broken at random), so
every condition collects ratings at the same pace and the order is random. A/B trials pick the
pair of folders this rater has compared least often, prefer two clips with the same file name
(the same note or seed rendered by two systems, the most informative comparison), and put
either folder first with probability 1/2 to cancel order bias.
"""

from __future__ import annotations

import itertools
import random
import secrets
import threading
from collections import OrderedDict, defaultdict
from dataclasses import dataclass

from waveloom.listening.store import RatingStore, Stimulus

MODES = ("likert", "ab")
_MAX_PENDING = 10_000


@dataclass(frozen=True)
class Trial:
    id: str
    mode: str
    rater: str
    stimuli: tuple[int, ...]  # stimulus ids in presentation order


class Scheduler:
    """Hands out trials over ``stimuli`` and remembers the open ones until answered."""

    def __init__(self, stimuli: list[Stimulus], store: RatingStore, seed: int | None = None):
        if not stimuli:
            raise ValueError("a listening test needs at least one stimulus")
        self.store = store
        self.stimuli = {s.id: s for s in stimuli}
        self.tokens = {secrets.token_urlsafe(12): s.id for s in stimuli}
        self._token_of = {sid: tok for tok, sid in self.tokens.items()}
        self.by_folder: dict[str, list[Stimulus]] = defaultdict(list)
        for s in stimuli:
            self.by_folder[s.folder].append(s)
        self._rng = random.Random(seed)
        self._pending: OrderedDict[str, Trial] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def modes(self) -> list[str]:
        return list(MODES) if len(self.by_folder) >= 2 else ["likert"]

    def token(self, stimulus_id: int) -> str:
        return self._token_of[stimulus_id]

    def _open(self, mode: str, rater: str, ids: tuple[int, ...]) -> Trial:
        trial = Trial(secrets.token_urlsafe(16), mode, rater, ids)
        with self._lock:
            self._pending[trial.id] = trial
            while len(self._pending) > _MAX_PENDING:
                self._pending.popitem(last=False)
        return trial

    def peek(self, trial_id: str) -> Trial | None:
        """The open trial ``trial_id`` (left open), or None."""
        with self._lock:
            return self._pending.get(trial_id)

    def take(self, trial_id: str) -> Trial | None:
        """The open trial ``trial_id`` (removed: each trial is answered once), or None."""
        with self._lock:
            return self._pending.pop(trial_id, None)

    def next_likert(self, rater: str) -> Trial:
        counts = self.store.rating_counts(rater)
        least = min(counts.get(sid, 0) for sid in self.stimuli)
        pool = [sid for sid in self.stimuli if counts.get(sid, 0) == least]
        return self._open("likert", rater, (self._rng.choice(pool),))

    def next_ab(self, rater: str) -> Trial:
        if len(self.by_folder) < 2:
            raise ValueError("A/B trials need at least two folders")
        folder_of = {sid: s.folder for sid, s in self.stimuli.items()}
        pair_counts: dict[frozenset, int] = defaultdict(int)
        for a, b in self.store.preference_pairs(rater):
            if a in folder_of and b in folder_of:
                pair_counts[frozenset((folder_of[a], folder_of[b]))] += 1
        pairs = [frozenset(p) for p in itertools.combinations(sorted(self.by_folder), 2)]
        least = min(pair_counts[p] for p in pairs)
        fa, fb = sorted(self._rng.choice([p for p in pairs if pair_counts[p] == least]))
        names_b = {s.name: s for s in self.by_folder[fb]}
        matched = [(s, names_b[s.name]) for s in self.by_folder[fa] if s.name in names_b]
        if matched:
            sa, sb = self._rng.choice(matched)
        else:
            sa, sb = self._rng.choice(self.by_folder[fa]), self._rng.choice(self.by_folder[fb])
        ids = (sa.id, sb.id) if self._rng.random() < 0.5 else (sb.id, sa.id)
        return self._open("ab", rater, ids)
