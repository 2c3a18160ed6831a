"""Blind listening tests: ``waveloom listen DIR_A DIR_B ...`` and ``waveloom listen --report``.

A local web page (served on 127.0.0.1 only) plays clips from the given folders in random order
without revealing which folder a clip comes from, collects 1-5 ratings of fidelity and
musicality (absolute category rating, as in ITU-T P.800 MOS tests) or A/B preferences between
clips of two folders, and stores every answer in SQLite. The report turns them into mean opinion
scores per folder and A/B win rates, each with a bootstrap confidence interval.

Modules: :mod:`.store` (SQLite), :mod:`.trials` (blind, balanced trial scheduling),
:mod:`.server` (HTTP), :mod:`.page` (the HTML/JS page), :mod:`.report` (MOS and win rates).
"""

from waveloom.listening.report import format_listening_report, listening_report
from waveloom.listening.server import make_server, serve

__all__ = ["format_listening_report", "listening_report", "make_server", "serve"]
