"""Listening test: the page end to end in a real headless Chromium, the server's checks, the report.

The browser is driven over the Chrome DevTools Protocol with a minimal stdlib WebSocket client
(no extra dependency): real mouse events click Play, the clip plays to its end, the radio
buttons and Submit are clicked, and the rating must then be in SQLite. Skipped, with the reason,
when /usr/bin/chromium is absent (Debian: `apt-get install chromium`).
"""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from waveloom.cli import main
from waveloom.listening import format_listening_report, listening_report, make_server
from waveloom.listening.store import RatingStore

SR = 16000


def _tone(path: Path, freq: float, seconds: float = 0.25) -> None:
    t = np.arange(int(seconds * SR)) / SR
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), SR)


@pytest.fixture()
def folders(tmp_path):
    a, b = tmp_path / "model-a", tmp_path / "model-b"
    for i in range(2):
        _tone(a / f"note-{i}.wav", 220.0 * (i + 1))
        _tone(b / f"note-{i}.wav", 330.0 * (i + 1))
    return a, b


@pytest.fixture()
def server(folders):
    srv = make_server(list(folders), port=0, seed=0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _rows(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as con:
        return con.execute(sql).fetchall()


# ------------------------------------------------------------------ end to end in Chromium


def test_page_rates_and_compares_in_headless_chromium(server, browser, folders):
    db = server.store.path
    assert db == folders[0].parent / "listening.sqlite"
    browser.call("Page.enable")
    browser.call("Page.navigate", url=server.url)
    browser.wait_for("document.body.dataset.mode === 'likert'")
    src = browser.js("document.getElementById('clip').src")
    assert "note-" not in src and "model-" not in src  # blind: no file or folder names
    # Rating is impossible before the clip has been heard to its end.
    assert browser.js("document.getElementById('fidelity-set').disabled")
    assert browser.js("document.getElementById('submit').disabled")
    browser.click("play")
    browser.wait_for("document.getElementById('clip').ended")
    browser.wait_for("!document.getElementById('fidelity-set').disabled")
    browser.click("fidelity-4")
    assert browser.js("document.getElementById('submit').disabled")  # musicality missing
    browser.click("musicality-2")
    browser.wait_for("!document.getElementById('submit').disabled")
    browser.click("submit")
    first = browser.js("document.body.dataset.trial")
    browser.wait_for("document.getElementById('count').textContent === '1'")
    browser.wait_for(f"document.body.dataset.trial !== {first!r}")  # the next trial is up

    rows = _rows(db, "SELECT s.folder, s.name, r.fidelity, r.musicality, r.rater "
                     "FROM ratings r JOIN stimuli s ON s.id = r.stimulus")
    assert len(rows) == 1
    folder, name, fidelity, musicality, rater = rows[0]
    assert (fidelity, musicality) == (4, 2)
    assert folder in {str(f.resolve()) for f in folders} and name in {"note-0", "note-1"}
    assert rater == browser.js("localStorage.getItem('waveloom-rater')")
    # The page moved on to a fresh trial with the choices cleared.
    assert browser.js("document.querySelectorAll('input:checked').length") == 0

    # A/B mode: both clips must be heard, then a preference is stored.
    browser.click("mode-ab")
    browser.wait_for("document.body.dataset.mode === 'ab'")
    browser.click("play-a")
    browser.wait_for("document.getElementById('clip-a').ended")
    assert browser.js("document.getElementById('choice-set').disabled")
    browser.click("play-b")
    browser.wait_for("document.getElementById('clip-b').ended")
    browser.wait_for("!document.getElementById('choice-set').disabled")
    browser.click("choice-b")
    browser.click("submit-ab")
    browser.wait_for("document.getElementById('count').textContent === '2'")
    prefs = _rows(db, "SELECT sa.folder, sb.folder, sa.name, sb.name, p.choice "
                      "FROM preferences p JOIN stimuli sa ON sa.id = p.a "
                      "JOIN stimuli sb ON sb.id = p.b")
    assert len(prefs) == 1
    fa, fb, na, nb, choice = prefs[0]
    assert choice == "b" and fa != fb and na == nb  # same-named clips of two folders


# ------------------------------------------------------------------ server checks (no browser)


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def _post(url: str, payload: dict) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps(payload).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


def test_server_rejects_bad_answers_and_closes_trials(server):
    base = server.url
    assert server.server_address[0] == "127.0.0.1"
    trial = _get(base + "api/trial?mode=likert&rater=r1")
    audio = urllib.request.urlopen(base + trial["audio"][0].lstrip("/"), timeout=10).read()
    assert audio[:4] == b"RIFF"
    answer = {"trial": trial["trial"], "rater": "r1", "fidelity": 5, "musicality": 5}
    assert _post(base + "api/answer", {**answer, "fidelity": 6})[0] == 400
    assert _post(base + "api/answer", {**answer, "fidelity": True})[0] == 400
    assert _post(base + "api/answer", {**answer, "musicality": None})[0] == 400
    assert _post(base + "api/answer", {**answer, "rater": "r2"})[0] == 403
    assert _rows(server.store.path, "SELECT COUNT(*) FROM ratings") == [(0,)]
    # Rejected answers leave the trial open; the corrected one is stored and closes it.
    assert _post(base + "api/answer", answer) == (200, {"ok": True, "answered": 1})
    assert _post(base + "api/answer", answer)[0] == 409
    assert _rows(server.store.path, "SELECT fidelity, musicality FROM ratings") == [(5, 5)]
    ab = _get(base + "api/trial?mode=ab&rater=r1")
    assert len(ab["audio"]) == 2 and ab["audio"][0] != ab["audio"][1]
    assert _post(base + "api/answer", {"trial": ab["trial"], "rater": "r1",
                                       "choice": "c"})[0] == 400
    assert _post(base + "api/answer", {"trial": ab["trial"], "rater": "r1",
                                       "choice": "none"})[0] == 200
    with pytest.raises(urllib.error.HTTPError):
        _get(base + "api/trial?mode=likert&rater=bad%20id")
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(base + "audio/not-a-token", timeout=10)


def test_likert_schedule_is_balanced_and_ab_order_random(folders, tmp_path):
    from waveloom.listening.server import _collect
    from waveloom.listening.trials import Scheduler

    store = RatingStore(tmp_path / "s.sqlite")
    sched = Scheduler(_collect(list(folders), store), store, seed=1)
    seen = []
    for _ in range(8):  # 4 stimuli: two full rounds, each stimulus once per round
        trial = sched.next_likert("r")
        seen.append(trial.stimuli[0])
        store.add_rating("r", trial.stimuli[0], 3, 3)
    assert sorted(seen[:4]) == sorted(seen[4:]) == sorted(sched.stimuli)
    firsts = set()
    for _ in range(40):
        trial = sched.next_ab("r")
        a, b = (sched.stimuli[s] for s in trial.stimuli)
        assert a.folder != b.folder and a.name == b.name
        firsts.add(a.folder)
    assert len(firsts) == 2  # both folders get presented first
    store.close()


def test_report_gives_mos_with_intervals_and_win_rates(folders, tmp_path, capsys):
    db = tmp_path / "r.sqlite"
    store = RatingStore(db)
    from waveloom.listening.server import _collect

    stimuli = _collect(list(folders), store)
    a = [s for s in stimuli if s.folder == str(folders[0].resolve())]
    b = [s for s in stimuli if s.folder == str(folders[1].resolve())]
    rng = np.random.default_rng(0)
    for k in range(60):
        store.add_rating(f"r{k % 6}", a[k % 2].id, int(rng.integers(4, 6)), 4)
        store.add_rating(f"r{k % 6}", b[k % 2].id, int(rng.integers(1, 3)), 2)
    for k in range(30):  # folder A preferred 3:1 whichever side it was presented on
        x, y = (a[0], b[0]) if k % 2 else (b[0], a[0])
        choice = ("a" if x is a[0] else "b") if k % 4 else ("b" if x is a[0] else "a")
        store.add_preference("r0", x.id, y.id, choice if k != 29 else "none")
    store.close()
    report = listening_report(db, resamples=500)
    mos_a, mos_b = report["mos"]["model-a"], report["mos"]["model-b"]
    assert mos_a["ratings"] == 60 and mos_a["raters"] == 6
    assert 4.0 <= mos_a["fidelity"]["low"] <= mos_a["fidelity"]["mean"] <= \
        mos_a["fidelity"]["high"] <= 5.0
    assert mos_b["fidelity"]["high"] < mos_a["fidelity"]["low"]  # clearly separated
    assert mos_a["musicality"]["low"] == mos_a["musicality"]["high"] == 4.0  # no spread
    (ab,) = report["ab"]
    assert ab["first"] == "model-a" and ab["no_preference"] == 1
    assert ab["first_wins"] + ab["second_wins"] == 29
    assert 0.5 < ab["first_win_rate"]["mean"] < 0.9
    text = format_listening_report(report)
    assert "model-a" in text and "win rate" in text
    assert main(["listen", "--report", "--db", str(db)]) == 0
    assert "MOS" in capsys.readouterr().out
    out = tmp_path / "report.json"
    assert main(["listen", "--report", "--db", str(db), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["mos"]["model-b"]["ratings"] == 60


def test_listen_errors_are_one_line(tmp_path):
    from waveloom.errors import WaveloomError

    with pytest.raises(WaveloomError, match="no ratings database"):
        listening_report(tmp_path / "missing.sqlite")
    (tmp_path / "empty").mkdir()
    with pytest.raises(WaveloomError, match="no audio files"):
        make_server([tmp_path / "empty"], port=0)
    assert main(["listen", "--report"]) == 2


# ------------------------------------------------------------------ #19: hostile clients


def _raw(srv, request: bytes, *, timeout: float = 10.0) -> tuple[int, bytes]:
    """Send ``request`` bytes to the server on 127.0.0.1; (status, body) of the reply."""
    with socket.create_connection(("127.0.0.1", srv.server_address[1]), timeout=timeout) as s:
        s.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data or len(data) < data.index(b"\r\n\r\n") + 4 + int(
                _header(data, b"content-length") or 0):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def _header(data: bytes, name: bytes) -> bytes | None:
    for line in data.split(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip()
    return None


def _post_raw(srv, body: bytes, *, length: str | None = None, host: str | None = None,
              extra: str = "") -> int:
    host = host or f"127.0.0.1:{srv.server_address[1]}"
    length = str(len(body)) if length is None else length
    req = (f"POST /api/answer HTTP/1.1\r\nHost: {host}\r\nContent-Length: {length}\r\n"
           f"Content-Type: application/json\r\n{extra}Connection: close\r\n\r\n").encode()
    return _raw(srv, req + body)[0]


def test_server_refuses_foreign_host_and_origin(server):
    port = server.server_address[1]
    get = "GET /api/config HTTP/1.1\r\nHost: {}\r\n{}Connection: close\r\n\r\n"
    for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
        assert _raw(server, get.format(host, "").encode())[0] == 200
    assert _raw(server, get.format(f"evil.example:{port}", "").encode())[0] == 403
    assert _raw(server, get.format(f"127.0.0.1:{port + 1}", "").encode())[0] == 403
    assert _raw(server, b"GET /api/config HTTP/1.0\r\n\r\n")[0] == 403  # no Host at all
    assert _raw(server, get.format(f"127.0.0.1:{port}",
                                   "Origin: http://evil.example\r\n").encode())[0] == 403
    assert _raw(server, get.format(f"127.0.0.1:{port}",
                                   f"Origin: http://localhost:{port}\r\n").encode())[0] == 200


def test_server_bad_length_deep_json_and_size_limit(server):
    from waveloom.listening.server import MAX_BODY

    assert _post_raw(server, b"{}", length="abc") == 400
    assert _post_raw(server, b"{}", length="-5") == 400
    assert _post_raw(server, b"", length="0") == 400
    assert _post_raw(server, b"x" * 10, length=str(MAX_BODY + 1)) == 413
    assert _post_raw(server, b"[" * 1500 + b"]" * 1500) == 400
    assert _post_raw(server, b'{"a": ' * 500 + b"1" + b"}" * 500) == 400
    assert _post_raw(server, b'{"rater": "r1", "trial": "[[[[[[[[\\"]]"}') == 409  # in a string
    assert _post_raw(server, b"\xff\xfe{}") == 400


def test_half_sent_body_times_out_and_frees_the_server(server, monkeypatch):
    import waveloom.listening.server as srv_mod

    monkeypatch.setattr(srv_mod._Handler, "timeout", 0.5)
    port = server.server_address[1]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"POST /api/answer HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                  f"Content-Length: 100\r\n\r\n{{\"rater\"".encode())
        t0 = time.monotonic()
        reply = b""
        for _ in range(100):  # bounded: the server answers 408 and closes within the timeout
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
        assert reply.split()[1] == b"408" and time.monotonic() - t0 < 5
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:  # headers never end
        s.sendall(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode())
        s.settimeout(5)
        assert s.recv(4096) == b""  # closed by the server after the read timeout
    assert _get(server.url + "api/config")["stimuli"] == 4


def test_listen_port_in_use_and_bad_report_flags_are_one_line(folders, tmp_path, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        assert main(["listen", *map(str, folders), "--port", str(port)]) == 2
    db = tmp_path / "r.sqlite"
    RatingStore(db).close()
    for flags in (["--bootstrap", "-5"], ["--ci", "2"], ["--ci", "nan"], ["--ci", "0"]):
        assert main(["listen", "--report", "--db", str(db), *flags]) == 2
    assert main(["listen", *map(str, folders), "--port", "70000"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 6 and all(line.startswith("error: ") for line in err)
    assert "another --port" in err[0] and "--bootstrap -5" in err[1] and "--ci 2" in err[2]
