"""The training-speed benchmarks run: table printed, FLOP counts agree, profile split sums.

Why: benchmarks are run rarely and by hand, so a renamed model attribute or objective method
breaks them silently; these run each on the tiny preset for one round (a few seconds).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from .conftest import REPO

BENCH = REPO / "benchmarks"


@pytest.fixture(scope="module")
def bench_modules():
    sys.path.insert(0, str(BENCH))
    try:
        import profile_step
        import train_speed

        yield train_speed, profile_step
    finally:
        sys.path.remove(str(BENCH))


def _run_bench(script: str, *args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    """``benchmarks/SCRIPT ARGS...`` from the repository root with the checkout importable;
    fails the test with the script's stderr tail unless it exits 0."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True,
                          text=True, env=env, timeout=timeout, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def test_train_speed_prints_its_table_and_json(tmp_path):
    out = tmp_path / "speed.json"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, str(BENCH / "train_speed.py"), "--presets", "wavenet/tiny",
         "--rounds", "1", "--warmup", "0", "--threads", "1", "--devices", "cpu",
         "--mm-size", "256", "--json", str(out)],
        capture_output=True, text=True, env=env, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "window smp/s" in proc.stdout and "% peak" in proc.stdout
    assert "wavenet/tiny" in proc.stdout and "fp32 matmul peak (cpu" in proc.stdout
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == 1 and rows[0]["scored_targets_per_s"] > 0
    assert 0 < rows[0]["fraction_of_mm_peak"] < 10


def test_counted_flops_match_the_wavenet_formula(bench_modules):
    train_speed, _ = bench_modules
    case = train_speed.build_case("wavenet/tiny", torch.device("cpu"), (2, 300))
    assert case.targets == 2 * (300 - 32) and case.window_samples == 600
    assert case.flops == pytest.approx(case.analytic, rel=1e-3)


def test_profile_step_splits_a_step_into_its_parts(bench_modules, capsys):
    _, profile_step = bench_modules
    profile_step.main(["--preset", "wavenet/tiny", "--shape", "2x300", "--threads", "1",
                       "--top", "5"])
    out = capsys.readouterr().out
    for part in ("forward", "backward", "optimizer", "ema"):
        assert f"\n{part} " in out
    assert "aten::" in out


def test_generate_command_benchmark_prints_its_table():
    """benchmarks/generate_command.py: the whole command beside the steady loop (one round of
    0.2 s; a few seconds of start-up per command)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, str(BENCH / "generate_command.py"), "--seconds", "0.2", "--n", "1",
         "--rounds", "1"],
        capture_output=True, text=True, env=env, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| seconds | command s (CPU s) | real time per stream | all streams |" in proc.stdout
    assert "start-up" in proc.stdout and "ratio" in proc.stdout


def test_command_speed_times_any_verb_and_records_it(tmp_path):
    """benchmarks/command_speed.py: one round of a verb that reads {input} and writes {out},
    its real-time factor from the input's length, recorded on a copy's card with the command
    (the input's making first); a failing verb is one line."""
    import shutil

    import soundfile as sf

    from waveloom.zoo.records import read_records

    wav = tmp_path / "in.wav"
    sf.write(wav, np.zeros(8000, np.float32), 16000)
    ckpt = tmp_path / "model.safetensors"
    shutil.copy(REPO / "waveloom" / "assets" / "ddsp-ae-notes.safetensors", ckpt)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    base = [sys.executable, str(BENCH / "command_speed.py"), "--input", str(wav), "--made-by",
            "make-it", "--rounds", "1"]
    proc = subprocess.run([*base, "--record", str(ckpt), "--", "transfer", str(ckpt), "{input}",
                           "--out", "{out}", "-q"], capture_output=True, text=True, env=env,
                          timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "0.5 s of audio" in proc.stdout and "x real time" in proc.stdout
    (m,), _ = read_records(ckpt)
    assert m.metric == "whole transfer command" and m.unit == "x real time" and m.n == 1
    assert m.command.startswith("make-it && python benchmarks/command_speed.py")
    assert "--record" not in m.command and "{input}" in m.command
    bad = subprocess.run([*base, "--", "transfer", str(tmp_path / "none.safetensors"),
                          "{input}", "--out", "{out}"], capture_output=True, text=True,
                         env=env, timeout=300, cwd=REPO)
    assert bad.returncode != 0 and bad.stderr.count("\n") == 1 and "failed" in bad.stderr


def test_pipeline_benchmark_times_both_drivers_and_checks_their_codes():
    """benchmarks/pipeline.py: one thread against the two-thread pipeline on the shipped
    model, one short round; it exits non-zero if the drivers' codes differ."""
    from waveloom.sampling import cbuild

    if cbuild.load()[0] is None:
        pytest.skip("the pipeline is the C backend's: no C compiler here")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, str(BENCH / "pipeline.py"), "--samples", "2000", "--rounds", "1"],
        capture_output=True, text=True, env=env, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "same codes on every driver: True" in proc.stdout
    assert "| generate |" in proc.stdout and "| teacher-forced |" in proc.stdout


def test_compare_reference_pairs_the_fast_and_reference_stacks(bench_modules, capsys):
    train_speed, _ = bench_modules
    train_speed.main(["--compare-reference", "--presets", "wavenet/tiny", "--shape", "2x300",
                      "--threads", "1", "--rounds", "1", "--warmup", "0"])
    out = capsys.readouterr().out
    assert "speed fast/ref" in out and "wavenet/tiny" in out


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only refusal")
def test_gpu_script_refuses_cleanly_without_a_gpu():
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(["bash", str(BENCH / "gpu_train_speed.sh")], capture_output=True,
                          text=True, env=env, timeout=60, cwd=REPO)
    assert proc.returncode == 2 and "no CUDA device" in proc.stderr


def test_codec_eval_scores_the_codec_beside_opus_and_mulaw(notes_cache, tmp_path):
    """benchmarks/codec_eval.py on a tiny codec: every coder gets finite scores, Opus a
    measured bitrate, and mu-law (near-transparent) beats silence on both metrics."""
    sys.path.insert(0, str(BENCH))
    try:
        import codec_eval
    finally:
        sys.path.remove(str(BENCH))
    from waveloom.data.cache import AudioCache
    from waveloom.models.load import load_config
    from waveloom.models.registry import build_model

    codec = build_model(load_config(REPO / "configs" / "codec" / "tiny.yaml")).eval()
    cache = AudioCache(notes_cache)
    clips = codec_eval.held_out_clips(cache, "train", 2, 1.0)
    table = codec_eval.rows(codec, clips, cache.sample_rate, codec.config.bandwidths()[:1])
    by_name = {r["name"].split(" (")[0]: r for r in table}
    assert {"Opus", "mu-law 8-bit", "silence"} <= set(by_name)
    assert all(np.isfinite(r["mss"].mean) and np.isfinite(r["si_sdr"].mean) for r in table)
    assert 4 < by_name["Opus"]["kbps"] < 40
    assert by_name["mu-law 8-bit"]["mss"].mean < by_name["silence"]["mss"].mean
    assert by_name["mu-law 8-bit"]["si_sdr"].mean > 20
    row, errors = codec_eval.bottleneck(codec, clips, codec.config.n_q)
    assert np.isfinite(row["mss"].mean) and row["name"].startswith("decoder on unquantized")
    assert errors[0].startswith("k=1: ") and len(errors) == int(np.log2(codec.config.n_q)) + 1
    notes = codec_eval.held_out_clips(cache, "all", len(cache), 0.5, start_s=0.0)
    assert np.array_equal(notes[0], cache.read(0, 0, 8000))  # notes keep their attack


def test_student_speed_times_the_whole_commands():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, str(BENCH / "student_speed.py"), "--presets", "tiny", "--n", "1",
         "--seconds", "0.1", "--rounds", "1", "--floor"],
        capture_output=True, text=True, env=env, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| teacher (fast engine) |" in proc.stdout and "| student tiny |" in proc.stdout
    assert "MACs per sample" in proc.stdout and "start-up floor s" in proc.stdout
    rows = [line.split("|") for line in proc.stdout.splitlines() if line.startswith("| student")]
    assert float(rows[0][-3]) > 0 and rows[0][-2].strip().endswith("x")


def test_diffusion_speed_prints_a_row_per_step_count(tmp_path):
    """benchmarks/diffusion_speed.py on a tiny DiffWave: one table row per step count."""
    from waveloom.checkpoint import save_checkpoint
    from waveloom.models.load import load_config
    from waveloom.models.registry import build_model

    cfg = load_config(REPO / "configs" / "diffwave" / "tiny.yaml")
    ckpt = save_checkpoint(tmp_path / "model.safetensors", build_model(cfg), cfg)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, str(BENCH / "diffusion_speed.py"), str(ckpt), "--steps", "1", "3",
         "--n", "1", "--seconds", "0.05", "--rounds", "1", "--threads", "1"],
        capture_output=True, text=True, env=env, timeout=180, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ") and
            line.split("|")[1].strip().isdigit()]
    assert [r.split("|")[1].strip() for r in rows] == ["1", "3"]
    assert all(float(r.split("|")[3]) > 0 for r in rows)


def test_diffusion_denoising_scores_a_silent_guess_by_the_noise_left():
    """A fresh DiffWave predicts zero noise (its head starts at zero), so its x0 estimate is
    x_t / sqrt(abar) and the reported SNR must be power(x0) abar / ((1 - abar) power(noise))."""
    import math

    from waveloom.models.load import load_config
    from waveloom.models.registry import build_model

    sys.path.insert(0, str(BENCH))
    try:
        import diffusion_denoising
    finally:
        sys.path.remove(str(BENCH))
    model = build_model(load_config(REPO / "configs" / "diffwave" / "tiny.yaml")).eval()
    batch = {"audio": 0.3 * torch.sin(torch.arange(2 * 512).reshape(2, 512) * 0.1),
             "pitch": torch.tensor([60, 62]), "instrument": torch.tensor([0, 1])}
    rows = diffusion_denoising.denoising_rows(model, batch, [0, 10, 19], seed=3)
    noise = torch.randn((2, 512), generator=torch.Generator().manual_seed(3))
    power, npow = float(batch["audio"].pow(2).mean()), float(noise.pow(2).mean())
    for row in rows:
        a = row["abar"]
        expected = 10 * math.log10(power * a / ((1 - a) * npow))
        assert row["x0_snr_db"] == pytest.approx(expected, abs=1e-3)
        assert row["eps_mse"] == pytest.approx(npow, rel=1e-5)


def test_envelope_roundtrip_resynthesises_notes_the_timbre_judge_recognises(tmp_path):
    """benchmarks/envelope_roundtrip.py fits and plays back every note of a render-notes
    folder; benchmarks/note_timbre.py --exclude-velocity judges the copies against the other
    velocities: two clearly different instruments are told apart."""
    from waveloom.data.synth import render_notes

    notes = tmp_path / "notes"
    render_notes(notes, programs=[0, 73], pitches=range(60, 62), velocities=[90, 105],
                 hold_seconds=1.0, release_seconds=0.5, progress=False)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = tmp_path / "copies"
    proc = subprocess.run(
        [sys.executable, str(BENCH / "envelope_roundtrip.py"), str(notes), "--out", str(out),
         "--frames", "48"], capture_output=True, text=True, env=env, timeout=180, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads((out / "roundtrip.json").read_text())
    assert len(rows) == 4 and all(0 < r["distance"] < 20 and 0.5 < r["rms_ratio"] < 2
                                  for r in rows)
    assert len(list(out.glob("*_k06[01].wav"))) == 4
    proc = subprocess.run(
        [sys.executable, str(BENCH / "note_timbre.py"), str(out), "--real", str(notes),
         "--seconds", "1", "--exclude-velocity", "90"],
        capture_output=True, text=True, env=env, timeout=180, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((out / "timbre.json").read_text())
    assert report["generated"]["n"] == 4 and report["generated"]["recognised"] == 1.0


def _ensemble_folder(root, seed: int):
    """A render-midi-like folder: 3 test renders per 'ensemble' (a bright pulse train and a
    dull sine chord), 2 s each, with its rows file."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    t = np.arange(32000) / 16000
    rows = []
    for e in ("bright", "dull"):
        for k in range(3):
            f0 = 200 * 2 ** (rng.integers(0, 12) / 12)
            if e == "bright":
                audio = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 30))
            else:
                audio = np.sin(2 * np.pi * f0 * t) + np.sin(2 * np.pi * f0 * 1.5 * t)
            audio = 0.1 * audio / np.abs(audio).max() + 1e-3 * rng.standard_normal(len(t))
            name = f"2024/{e}-{k}.wav"
            (root / "2024").mkdir(parents=True, exist_ok=True)
            sf.write(root / name, audio.astype(np.float32), 16000)
            rows.append({"split": "test", "audio_filename": name, "instrument_str": e,
                         "canonical_title": f"piece {k}"})
    (root / "render-midi.rows.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    return root


def test_ensemble_timbre_recognises_clips_of_the_asked_ensemble(tmp_path):
    """benchmarks/ensemble_timbre.py: clips of each fake ensemble (another seed's renders,
    laid out as <ensemble>/*.wav) are recognised, the real leave-one-out row is printed and
    the figure is written."""
    import shutil

    real = _ensemble_folder(tmp_path / "real", 0)
    other = _ensemble_folder(tmp_path / "other", 1)
    gen = tmp_path / "gen"
    for e in ("bright", "dull"):
        (gen / e).mkdir(parents=True)
        for k in range(3):
            shutil.copy(other / "2024" / f"{e}-{k}.wav", gen / e / f"{k}.wav")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, str(BENCH / "ensemble_timbre.py"), str(gen), "--real", str(real),
         "--seconds", "2", "--figure", str(tmp_path / "fig.png")],
        capture_output=True, text=True, env=env, timeout=180, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "generated: recognised 6/6" in proc.stdout
    assert "real (test, leave one out): recognised 6/6" in proc.stdout
    assert (tmp_path / "fig.png").stat().st_size > 1000


def test_latent_ceiling_scores_a_spectral_autoencoder_and_writes_its_copies(notes_cache,
                                                                            tmp_path):
    """benchmarks/latent_ceiling.py on a tiny spectral AE: its reconstruction, Griffin-Lim of
    the true magnitudes (near the originals) and silence are scored; --write lays the
    copies out per ensemble."""
    from waveloom.checkpoint import save_checkpoint
    from waveloom.models.load import load_config
    from waveloom.models.registry import build_model

    run = load_config(REPO / "configs" / "spectral_ae" / "tiny.yaml",
                      ["model.pitch_conditioning=false"])
    ckpt = save_checkpoint(tmp_path / "ae.safetensors", build_model(run), run)
    proc = _run_bench("latent_ceiling.py", str(ckpt), str(notes_cache), "--split", "train",
                      "--clips", "2", "--seconds", "1")
    scores = {line.split(" | ")[0].strip("| "): float(line.split(" | ")[1].split()[0])
              for line in proc.stdout.splitlines() if line.startswith("| ") and "[" in line}
    assert set(scores) == {"spectral_ae encode + decode", "Griffin-Lim of the true magnitudes",
                           "silence"}
    assert scores["Griffin-Lim of the true magnitudes"] < scores["silence"]
    renders = _ensemble_folder(tmp_path / "renders", 0)
    _run_bench("latent_ceiling.py", str(ckpt), str(notes_cache), "--split", "test",
               "--seconds", "1", "--per", "2", "--write", str(tmp_path / "w"),
               "--renders", str(renders))
    assert sorted(p.name for p in (tmp_path / "w" / "dull").glob("*.wav")) == ["0.wav", "1.wav"]


def _one_line_piece(audio_dir: Path, pieces: Path, program: int) -> None:
    """A held-out piece as the transfer benchmarks read it: ``pieces/line.mid`` and, in
    ``audio_dir``, its render ``line.wav`` (1.5 s of 440 Hz) beside ``line.midi`` (three notes
    ending at 0.4, 0.8 and 1.5 s, in GM ``program``)."""
    import pretty_midi
    import soundfile as sf

    audio_dir.mkdir(parents=True), pieces.mkdir()
    midi = pretty_midi.PrettyMIDI()
    part = pretty_midi.Instrument(program=program)
    part.notes = [pretty_midi.Note(90, 69, 0.0, 0.4), pretty_midi.Note(90, 72, 0.4, 0.8),
                  pretty_midi.Note(90, 74, 0.8, 1.5)]
    midi.instruments.append(part)
    midi.write(str(audio_dir / "line.midi"))
    midi.write(str(pieces / "line.mid"))
    t = np.arange(24000) / 16000
    sf.write(audio_dir / "line.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype("float32"),
             16000)


def test_harmonic_profile_reads_partials_and_floor_note_by_note(tmp_path):
    """benchmarks/harmonic_profile.py: a line whose every note is its score pitch with the
    second partial 20 dB down reads as 0 / -20 dB; the same line over white noise keeps the
    profile's first partial but loses most of its harmonic-to-noise ratio."""
    import soundfile as sf

    clean_dir, pieces = tmp_path / "clean", tmp_path / "pieces"
    _one_line_piece(clean_dir, pieces, program=71)
    t = np.arange(24000) / 16000
    f0 = np.select([t < 0.4, t < 0.8], [440.0, 523.25], 587.33)  # MIDI 69, 72, 74
    phase = 2 * np.pi * np.cumsum(f0) / 16000
    line = 0.3 * np.sin(phase) + 0.03 * np.sin(2 * phase)
    sf.write(clean_dir / "line.wav", line.astype("float32"), 16000)
    noisy_dir = tmp_path / "noisy"
    noisy_dir.mkdir()
    noise = 0.05 * np.random.default_rng(0).standard_normal(len(line))
    sf.write(noisy_dir / "line.wav", (line + noise).astype("float32"), 16000)
    _run_bench("harmonic_profile.py", "--pieces", str(pieces), "--render", f"clean={clean_dir}",
               "--render", f"noisy={noisy_dir}", "--harmonics", "4",
               "--out", str(tmp_path / "out"), "--figure", str(tmp_path / "fig.png"))
    rows = json.loads((tmp_path / "out" / "results.json").read_text())
    assert rows["clean"]["notes"] == 3 and rows["noisy"]["notes"] == 3
    assert rows["clean"]["profile_db"][0] == 0.0
    assert abs(rows["clean"]["profile_db"][1] + 20.0) < 1.5
    assert rows["clean"]["hnr_db"] > 30.0
    assert rows["noisy"]["hnr_db"] < rows["clean"]["hnr_db"] - 15.0
    assert (tmp_path / "fig.png").stat().st_size > 1000


def test_transfer_table_plays_held_out_lines_through_a_translator_domain(tmp_path):
    """benchmarks/transfer_table.py with NAME=CKPT#DOMAIN: the inputs (cut to --seconds) are
    translated into that domain, written, and every note of the cut is judged on pitch and by
    an evaluation classifier's family head."""
    import soundfile as sf

    from waveloom.checkpoint import save_checkpoint
    from waveloom.evaluate.classifier import ClassifierConfig, NoteClassifier, save_classifier
    from waveloom.models.load import load_config
    from waveloom.models.registry import build_model

    run = load_config(str(REPO / "configs/translator/tiny.yaml"))
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "tr.safetensors", build_model(run), run,
                           extra={"domains": ["organ", "strings"]})
    classifier = save_classifier(tmp_path / "cls.safetensors", NoteClassifier(
        ClassifierConfig(families=["organ", "string"], pitches=[60, 69])))
    inputs, pieces = tmp_path / "in", tmp_path / "pieces"
    _one_line_piece(inputs, pieces, program=71)
    _run_bench("transfer_table.py", "--inputs", str(inputs), "--pieces", str(pieces),
               "--model", f"tr strings={ckpt}#strings", "--estimator", "crepe-tiny",
               "--seconds", "1.0", "--threads", "1", "--out", str(tmp_path / "out"),
               "--classifier", str(classifier), "--family", "tr strings=string",
               "--figure", str(tmp_path / "fig.png"), "--figure-seconds", "1")
    out, _ = sf.read(tmp_path / "out" / "tr strings" / "line.wav")
    assert out.shape == (16000,)
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    row = result["rows"]["tr strings"]
    assert row["notes"] == 2 and row["family_hits"][1] == 2  # the notes that end within 1 s
    assert sum(row["heard_as"].values()) == 2  # every judged note is heard as some family
    assert row["heard_as"].get("string", 0) == row["family_hits"][0]
    text = (tmp_path / "out" / "table.md").read_text()
    assert "| string " in text and "Heard as" in text
    assert (tmp_path / "fig.png").stat().st_size > 1000


def test_translator_latent_use_scores_each_decoder_three_ways(tmp_path):
    """benchmarks/translator_latent_use.py: one row per domain (own z, another window's z,
    zeros, the latent's spread), read from a render folder's validation rows; a translator
    with an f0 source gets a column more (its own z, the source silenced)."""
    import soundfile as sf

    from waveloom.checkpoint import save_checkpoint
    from waveloom.models.load import load_config
    from waveloom.models.registry import build_model

    renders = tmp_path / "renders"
    renders.mkdir()
    rows, rng = [], np.random.default_rng(0)
    for dom in ("organ", "strings"):
        for k in range(2):
            name = f"{dom}-{k}.wav"
            sf.write(renders / name, (0.2 * rng.standard_normal(8000)).astype("float32"), 16000)
            rows.append({"audio_filename": name, "split": "validation", "instrument_str": dom})
    (renders / "render-midi.rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for overrides, columns in (([], 7), (["model.f0_excitation=4"], 8)):
        run = load_config(str(REPO / "configs/translator/tiny.yaml"), overrides)
        torch.manual_seed(0)
        ckpt = save_checkpoint(tmp_path / "tr.safetensors", build_model(run), run,
                               extra={"domains": ["organ", "strings"]})
        proc = _run_bench("translator_latent_use.py", str(ckpt), str(renders), "--windows",
                          "2", "--samples", "256", "--start", "0", timeout=120)
        lines = [x for x in proc.stdout.splitlines() if x.startswith("| organ") or
                 x.startswith("| strings")]
        assert len(lines) == 2 and all(len(x.split("|")) == columns for x in lines)


def test_family_ceiling_judges_every_note_of_the_renders_by_each_classifier(tmp_path):
    """benchmarks/family_ceiling.py: each target's notes (those ending within --seconds) are
    cut out and classified, once per classifier, as transfer_table judges an output."""

    from waveloom.evaluate.classifier import ClassifierConfig, NoteClassifier, save_classifier

    torch.manual_seed(0)
    paths = [save_classifier(tmp_path / f"cls{k}.safetensors", NoteClassifier(
        ClassifierConfig(families=["flute", "string"], pitches=[60, 69]))) for k in range(2)]
    pieces = tmp_path / "pieces"
    _one_line_piece(tmp_path / "renders" / "2024", pieces, program=40)
    proc = _run_bench("family_ceiling.py", "--pieces", str(pieces), "--target",
                      f"string={tmp_path / 'renders'}", "--seconds", "1.0",
                      *[a for p in paths for a in ("--classifier", str(p))])
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [r["heard"]["string"][1] for r in rows] == [2, 2]  # two notes end within 1 s
    assert sum(line.startswith("| ") for line in proc.stdout.splitlines()) == 3
