"""``waveloom studio``: the API a script uses, the job worker (progress, cancel), uploads,
ratings, the server's defences, and the page end to end in a real headless Chromium."""

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

from waveloom.studio.server import make_server

SR = 16000


@pytest.fixture()
def studio(tmp_path):
    srv = make_server(tmp_path / "out", [tmp_path / "no-runs"], port=0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _call(srv, path: str, body=None, data: bytes | None = None, headers=None):
    payload = data if data is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(srv.url.rstrip("/") + path, data=payload,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            raw, status, ctype = r.read(), r.status, r.headers.get("Content-Type")
    except urllib.error.HTTPError as err:
        raw, status, ctype = err.read(), err.code, err.headers.get("Content-Type")
    return status, (json.loads(raw) if ctype == "application/json" else raw)


def _tone_bytes(tmp_path: Path, seconds: float = 0.5, freq: float = 440.0) -> bytes:
    t = np.arange(int(seconds * SR)) / SR
    path = tmp_path / f"tone-{freq:g}.wav"
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), SR)
    return path.read_bytes()


def test_generate_api_answers_a_wav_a_script_can_fetch(studio):
    """The issue's API: POST /api/generate {model: a shipped name or family, pitch,
    instrument, seconds, seed} -> {"audio": "/files/NAME.wav"}; GET returns the WAV."""
    status, models = _call(studio, "/api/models")
    assert status == 200
    panels = {m["name"]: m["panel"] for m in models["models"]}
    assert panels["wavenet-small-notes"] == "generate" and panels["ddsp-violin"] == "transfer"
    status, out = _call(studio, "/api/generate", {"model": "wavenet", "pitch": 60,
                                                  "instrument": "flute_synthetic_001",
                                                  "seconds": 0.25, "seed": 1})
    assert status == 200 and out["audio"].endswith(".wav") and out["image"].endswith(".png")
    status, wav = _call(studio, out["audio"])
    assert status == 200
    path = studio.out / out["audio"].removeprefix("/files/")
    audio, sr = sf.read(path)
    assert sr == SR and len(audio) == int(0.25 * SR) and wav == path.read_bytes()
    assert np.sqrt(np.mean(audio**2)) > 1e-3  # a note, not silence


def test_bad_requests_are_one_line_400s(studio):
    for body, words in [({"model": "nope"}, "not a generate model"),
                        ({"model": "wavenet", "pitch": 200}, "pitch"),
                        ({"model": "wavenet", "seconds": "long"}, "seconds"),
                        ({"model": "wavenet", "seconds": 1e9}, "seconds")]:
        status, out = _call(studio, "/api/generate", body)
        assert status == 400 and words in out["error"] and "\n" not in out["error"]
    status, out = _call(studio, "/api/jobs", {"kind": "paint", "model": "wavenet"})
    assert status == 400 and "kind" in out["error"]
    assert _call(studio, "/files/../../etc/passwd")[0] == 404
    assert _call(studio, "/api/jobs/nope")[0] == 404


def test_jobs_show_progress_and_cancel_leaves_no_file(studio):
    status, out = _call(studio, "/api/jobs", {"kind": "generate", "model": "wavenet-small-notes",
                                             "seconds": 30})
    assert status == 202
    job_id = out["job"]["id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = _call(studio, f"/api/jobs/{job_id}")[1]["job"]
        if job["status"] == "running" and job["progress"] > 0:
            break
        time.sleep(0.05)
    assert job["stage"] and 0 < job["progress"] < 1  # live, from the verb's own bar
    assert _call(studio, f"/api/jobs/{job_id}/cancel", {})[0] == 200
    job = studio.jobs.wait(job_id, timeout=60)
    assert job.status == "cancelled"
    assert not list((studio.out / job_id).glob("*.wav"))


def test_upload_transfer_and_rating(studio, tmp_path):
    status, up = _call(studio, "/api/upload", data=_tone_bytes(tmp_path),
                       headers={"X-Filename": "my tone.wav", "Content-Type": "audio/wav"})
    assert status == 200 and up["name"].endswith("my-tone.wav")
    status, out = _call(studio, "/api/jobs", {"kind": "transfer", "model": "ddsp-violin",
                                             "audio": up["name"]})
    job = studio.jobs.wait(out["job"]["id"], timeout=120)
    assert job.status == "done", job.error
    wav = next(f for f in job.public()["files"] if f.endswith(".wav"))
    audio, _ = sf.read(studio.out / wav.removeprefix("/files/"))
    assert len(audio) == int(0.5 * SR)
    status, _ = _call(studio, "/api/rate", {"file": wav, "rater": "tester", "fidelity": 4,
                                            "musicality": 3})
    assert status == 200
    with sqlite3.connect(studio.out / "listening.sqlite") as con:
        rows = con.execute("SELECT s.folder, r.fidelity, r.musicality FROM ratings r "
                           "JOIN stimuli s ON s.id = r.stimulus").fetchall()
    assert rows == [("studio:ddsp-violin", 4, 3)]
    status, out = _call(studio, "/api/upload", data=b"not audio at all",
                        headers={"X-Filename": "x.wav"})
    assert status == 400 and "not a readable sound" in out["error"]


def test_requests_from_other_hosts_are_refused(studio):
    port = studio.server_address[1]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /api/models HTTP/1.1\r\nHost: evil.example:80\r\n\r\n")
        assert b" 403 " in s.recv(4096).split(b"\r\n")[0]


def test_page_generates_in_headless_chromium(studio, browser):
    """Click Generate on the page and wait for the result's audio element to play."""
    browser.call("Page.enable")
    browser.call("Page.navigate", url=studio.url)
    browser.wait_for("document.body.dataset.ready === '1'")
    browser.js("document.getElementById('gen-seconds').value = '0.25'")
    # the first generating model listed: the demo WaveNet
    assert "wavenet-gaussian-notes" in browser.js("document.getElementById('gen-model').value")
    browser.click("generate")
    browser.wait_for("document.querySelector('#gen-jobs audio.result') !== null", timeout=120)
    src = browser.js("document.querySelector('#gen-jobs audio.result').src")
    assert src.endswith(".wav")
    browser.wait_for("document.querySelector('#gen-jobs audio.result').readyState >= 1")
    duration = browser.js("document.querySelector('#gen-jobs audio.result').duration")
    assert abs(duration - 0.25) < 0.01
    browser.click("tab-library")
    browser.wait_for("document.querySelectorAll('#library audio').length >= 1")


def test_transfer_panel_translates_with_a_translator(tmp_path):
    """A translator found in a user folder joins the Transfer panel; its job needs a domain,
    named from the checkpoint's list."""
    from waveloom.checkpoint import save_checkpoint
    from waveloom.models.load import load_config
    from waveloom.models.registry import build_model

    from .conftest import CONFIGS

    run = load_config(CONFIGS / "translator" / "tiny.yaml")
    (tmp_path / "mine").mkdir()
    save_checkpoint(tmp_path / "mine" / "tiny-translator.safetensors", build_model(run), run,
                    extra={"domains": ["violin", "flute"]})
    srv = make_server(tmp_path / "out", [tmp_path / "mine"], port=0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        entry = next(e for e in srv.entries if e.name == "tiny-translator")
        assert entry.panel == "transfer" and entry.vocabulary == ["violin", "flute"]
        _, up = _call(srv, "/api/upload", data=_tone_bytes(tmp_path, 0.1),
                      headers={"X-Filename": "t.wav"})
        status, out = _call(srv, "/api/jobs", {"kind": "transfer", "model": "tiny-translator",
                                              "audio": up["name"], "domain": "flute"})
        job = srv.jobs.wait(out["job"]["id"], timeout=120)
        assert job.status == "done", job.error
        assert any(f.endswith("-to-flute.wav") for f in job.files)
        _, out = _call(srv, "/api/jobs", {"kind": "transfer", "model": "tiny-translator",
                                          "audio": up["name"]})
        job = srv.jobs.wait(out["job"]["id"], timeout=120)
        assert job.status == "failed" and "domain" in job.error
    finally:
        srv.shutdown()
        srv.server_close()


def test_an_empty_temperature_means_the_checkpoints_recorded_one():
    """The generate panel leaves temperature empty by default: the runner then uses the
    checkpoint's extra.sampling.temperature (the shipped NSynth AE records 0.5), else 1."""
    from waveloom.app.common import recommended_temperature
    from waveloom.studio.tasks import generate_params

    assert generate_params({})["temperature"] is None
    assert generate_params({"temperature": 0.7})["temperature"] == 0.7
    assets = Path(__file__).resolve().parent.parent / "waveloom" / "assets"
    assert recommended_temperature(assets / "nsynth-ae-small-notes.safetensors") == 0.5
    assert recommended_temperature(assets / "wavenet-gaussian-notes.safetensors") is None
    assert recommended_temperature(None) is None
