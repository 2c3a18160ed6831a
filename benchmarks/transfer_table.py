"""Timbre transfer on held-out pieces, judged note by note (issues #22 and #27: DDSP's
``transfer`` and the translator's ``translate`` side by side).

The inputs are solo lines of chorales no DDSP model trained on, rendered with a SoundFont none
trained on (FluidR3) in an instrument none trained on (clarinet, GM 71). Each ``--model
NAME=CKPT`` plays them through ``transfer``'s own path (the input's f0 and loudness tracked,
then rendered offline; ae models resynthesise through their encoder's z); ``NAME=CKPT#DOMAIN``
plays them through a translator into that domain (encode, then sample the domain's WaveNet on
the fast engine, ``--seed``; ``--seconds`` cuts the inputs, as every sample is drawn one by one).
Every output is judged against the score:

* notes on pitch: each MIDI note's span (less 60 ms at both ends) is cut from the output and
  its pitch estimated by ``--estimator`` (crepe-full: the strict judge, octave errors count);
  the input is judged the same way (the ceiling the judge allows);
* spectral distance to the target: when ``--target NAME=FOLDER`` gives the same pieces rendered
  by that model's own instrument (the bundled SoundFont it learned from), the multi-scale
  spectral distance of the transfer to it, beside the input's distance to it. Lower than the
  input's means the transfer moved the timbre towards the instrument;
* the instrument heard: with ``--classifier FILE`` (``waveloom train-classifier``) and
  ``--family NAME=FAMILY``, the share of the output's notes whose family the classifier hears
  as FAMILY, beside the same share for the target rendering (the ceiling on such short notes);
* speed: seconds to track and render, as x real time (one process, 2 threads).

    python benchmarks/transfer_table.py --inputs data/xfer-clarinet-fluid \\
        --pieces data/xfer-midi --model violin=waveloom/assets/ddsp-violin.safetensors \\
        --target violin=data/xfer-violin --out out/xfer

``--pieces`` is a folder of the held-out ``.mid`` files: only inputs whose name (less the
``-soprano`` style suffix and extension) matches one are used. Results: docs/ddsp.md and
docs/translator.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

EDGE = 0.06  # seconds cut from both ends of a note before judging it (the glide between notes)


def named_pairs(items: list[str], what: str) -> dict[str, str]:
    """``["NAME=VALUE", ...]`` (the repeated ``--model``/``--target``/``--family`` flags) ->
    ``{NAME: VALUE}``; anything else is one line naming the flag."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"{what} {item!r}: expected NAME=PATH")
        out[name] = value
    return out


def held_out_inputs(inputs: Path, pieces: Path) -> list[tuple[Path, Path]]:
    """(input wav, its MIDI) for every held-out piece, sorted by name."""
    keep = {p.stem for p in pieces.glob("*.mid")}
    found = sorted(w for w in inputs.rglob("*.wav") if w.stem in keep)
    if not found:
        raise SystemExit(f"no input in {inputs} matches a piece in {pieces}")
    return [(w, w.with_suffix(".midi")) for w in found]


def note_spans(midi_path: Path) -> list[tuple[int, float, float]]:
    """(pitch, start s, end s) of every note of the file's single line, edges trimmed."""
    import pretty_midi

    notes = [n for inst in pretty_midi.PrettyMIDI(str(midi_path)).instruments
             if not inst.is_drum for n in inst.notes]
    return [(n.pitch, n.start + EDGE, n.end - EDGE) for n in sorted(notes, key=lambda n: n.start)
            if n.end - n.start > 2 * EDGE + 0.05]


def judge(estimator, audio: np.ndarray, sr: int, spans) -> dict[str, int]:
    """Counts of error kinds over ``spans`` of ``audio`` (pitch.error_kind, 50 cents)."""
    from waveloom.evaluate.pitch import error_kind

    clips = [audio[int(a * sr): int(b * sr)] for _, a, b in spans]
    estimates = estimator.many(clips, sr)
    counts: dict[str, int] = {}
    for (pitch, _, _), est in zip(spans, estimates):
        kind = error_kind(est.midi, pitch, 50.0)
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def heard_as(classifier, audio: np.ndarray, sr: int, spans) -> dict[str, int]:
    """{family: notes the evaluation classifier hears as it}: each note's span of ``audio``
    through the classifier's family head (its first ``cfg.seconds``, padded). Why the whole
    histogram: a translation not heard as its target is heard as *something*, and which
    family (the input's own? a decaying guitar?) says what the decoder failed to take."""
    import torch

    from waveloom.evaluate.classifier import clip_window, log_mel

    cfg = classifier.cfg
    clips = [clip_window(audio[int(a * sr): int(b * sr)], sr, cfg) for _, a, b in spans]
    if not clips:
        return {}
    with torch.no_grad():
        logits, _, _ = classifier(log_mel(torch.from_numpy(np.stack(clips)), cfg))
    heard = np.bincount(logits.argmax(-1).numpy(), minlength=len(cfg.families))
    return {name: int(n) for name, n in zip(cfg.families, heard) if n}


def check_family(classifier, family: str) -> None:
    """One line when the classifier has no family ``family``."""
    if family not in classifier.cfg.families:
        raise SystemExit(f"--family {family!r}: the classifier knows "
                         f"{', '.join(classifier.cfg.families)}")


def family_hits(classifier, audio: np.ndarray, sr: int, spans, family: str) -> tuple[int, int]:
    """(notes the evaluation classifier hears as ``family``, notes judged), from
    :func:`heard_as`."""
    check_family(classifier, family)
    heard = heard_as(classifier, audio, sr, spans)
    return heard.get(family, 0), sum(heard.values())


def spectral_distance(ref: np.ndarray, audio: np.ndarray) -> float:
    """Multi-scale spectral distance of ``audio`` to the target rendering ``ref`` (both at
    the same rate; the shorter length)."""
    from waveloom.audio.spectral import multiscale_spectral_distance

    n = min(len(ref), len(audio))
    return float(multiscale_spectral_distance(ref[:n].astype(np.float32),
                                              audio[:n].astype(np.float32)))


def transfer(model, audio: np.ndarray, name: str, f0_method: str | None,
             domain: int | None = None, temperature: float = 1.0,
             seed: int = 0) -> tuple[np.ndarray, float]:
    """(output audio, seconds) through ``transfer``'s offline path, or for a translator
    (``domain`` given) through ``translate``'s: encode, then sample the domain's decoder on the
    fast engine, drawn with ``seed`` at ``temperature``."""
    start = time.perf_counter()
    if domain is not None:
        import torch

        from waveloom.config import SamplingOptions
        from waveloom.sampling.translate import translate

        options = SamplingOptions(seed=seed, progress=False, temperature=temperature)
        out = translate(model, torch.from_numpy(audio)[None], domain, options)[0]
        return out.float().numpy(), time.perf_counter() - start
    from waveloom.models.ddsp.perform import audio_controls, render

    controls = audio_controls(model, audio, name, f0_method=f0_method)
    out = render(model, controls, length=len(audio))
    return out, time.perf_counter() - start


def model_domain(spec: str) -> tuple[Path, str | None]:
    """``CKPT`` or ``CKPT#DOMAIN`` (a translator and the domain to translate into)."""
    ckpt, _, domain = spec.partition("#")
    return Path(ckpt), domain or None


def clip_spans(spans, seconds: float | None):
    """The notes that end within the first ``seconds`` (all when None)."""
    return spans if seconds is None else [s for s in spans if s[2] <= seconds]


def _merge(total: dict, counts: dict) -> None:
    for k, v in counts.items():
        total[k] = total.get(k, 0) + v


def run_model(name: str, spec: str, items, target: Path | None, estimator, args,
              family: str | None = None) -> dict:
    """Every held-out input through one checkpoint: pitch counts, distances, speed."""
    from waveloom.app.translate import domain_names, resolve_domain
    from waveloom.audio.io import save_audio
    from waveloom.models.load import load_checkpoint

    if family is not None:
        check_family(args.classifier_model, family)
    ckpt, domain_name = model_domain(spec)
    model, run = load_checkpoint(ckpt, map_location="cpu")
    model.eval()
    domain = None if domain_name is None else resolve_domain(
        domain_name, domain_names(ckpt), model.config.domains)
    sr = run.data.sample_rate
    counts: dict[str, int] = {}
    dist, base, seconds, audio_s = [], [], 0.0, 0.0
    fam, fam_ref = np.zeros(2, int), np.zeros(2, int)  # (heard as the family, judged)
    heard: dict[str, int] = {}  # every family the output's notes are heard as
    for wav, midi in items:
        audio = load_clip(wav, sr, args.seconds)
        out, took = transfer(model, audio, wav.name, args.f0_method, domain, args.temperature,
                             args.seed)
        seconds, audio_s = seconds + took, audio_s + len(audio) / sr
        save_audio(args.out / name / wav.name, out, sr)
        spans = clip_spans(note_spans(midi), args.seconds)
        _merge(counts, judge(estimator, out, sr, spans))
        if family is not None:  # the classifier once per output: the histogram and the hits
            out_heard = heard_as(args.classifier_model, out, sr, spans)
            _merge(heard, out_heard)
            fam += np.array((out_heard.get(family, 0), sum(out_heard.values())))
        if target is not None:
            ref = load_clip(next(target.rglob(wav.name)), sr, None)  # read once, used thrice
            dist.append(spectral_distance(ref, out))
            base.append(spectral_distance(ref, audio))
            if family is not None:
                cut = ref if args.seconds is None else ref[: int(args.seconds * sr)]
                fam_ref += np.array(family_hits(args.classifier_model, cut, sr, spans, family))
    return {"counts": counts, "notes": sum(counts.values()), "x_real_time": audio_s / seconds,
            "distance": float(np.mean(dist)) if dist else None,
            "input_distance": float(np.mean(base)) if base else None, "audio_seconds": audio_s,
            "family": family, "family_hits": fam.tolist() if family else None,
            "heard_as": dict(sorted(heard.items(), key=lambda kv: -kv[1])) if family else None,
            "target_family_hits": fam_ref.tolist() if family and target else None}


def load_clip(path: Path, sr: int, seconds: float | None) -> np.ndarray:
    """The file at ``sr``, its first ``seconds`` when given."""
    from waveloom.audio.io import load_audio

    audio, _ = load_audio(path, sr)
    return audio if seconds is None else audio[: int(seconds * sr)]


def input_row(items, sr: int, estimator, seconds: float | None = None) -> dict:
    """The judge on the inputs themselves (its ceiling on this data)."""
    counts: dict[str, int] = {}
    for wav, midi in items:
        audio = load_clip(wav, sr, seconds)
        _merge(counts, judge(estimator, audio, sr, clip_spans(note_spans(midi), seconds)))
    return {"counts": counts, "notes": sum(counts.values())}


def figure(args, wav: Path, models: dict) -> Path:
    """Mel spectrograms of one piece: the input, then each model's output, the first
    ``--figure-seconds``, one shared colour scale (the targets' distances are in the table)."""
    from waveloom.audio.plots import plot_sheet

    n = int(args.figure_seconds * 16000)
    items = [(load_clip(wav, 16000, None)[:n], f"input: {args.input_name}")]
    items += [(load_clip(args.out / name / wav.name, 16000, None)[:n], name) for name in models]
    return plot_sheet(items, 16000, args.figure, ncols=2, title=wav.stem)


def table(rows: dict, estimator: str) -> str:
    lines = [f"| model | notes on pitch ({estimator}, 50 cents) | octave / other / unvoiced | "
             "spectral distance to the instrument's rendering (input's) | heard as the "
             "family (its rendering) | x real time |",
             "|---|---:|---|---|---|---:|"]
    for name, r in rows.items():
        c = r["counts"]
        dist = ("-" if r.get("distance") is None
                else f"{r['distance']:.2f} ({r['input_distance']:.2f})")
        speed = f"{r['x_real_time']:.1f}" if "x_real_time" in r else "-"
        fam = "-"
        if r.get("family_hits"):
            hit, n = r["family_hits"]
            fam = f"{r['family']} {hit}/{n}"
            if r.get("target_family_hits"):
                fam += " ({}/{})".format(*r["target_family_hits"])
        lines.append(f"| {name} | {c.get('correct', 0)}/{r['notes']} | {c.get('octave', 0)} / "
                     f"{c.get('other', 0) + c.get('fifth', 0)} / {c.get('unvoiced', 0)} | "
                     f"{dist} | {fam} | {speed} |")
    heard = [f"- {name}: " + ", ".join(f"{k} {v}" for k, v in r["heard_as"].items())
             for name, r in rows.items() if r.get("heard_as")]
    if heard:
        lines += ["", "Heard as (the classifier's family for each output note):", *heard]
    return "\n".join(lines)


def main() -> None:
    from waveloom.evaluate.pitch import ESTIMATORS

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--inputs", type=Path, required=True, help="render-midi folder of inputs")
    p.add_argument("--pieces", type=Path, required=True, help="folder of the held-out .mid")
    p.add_argument("--model", action="append", default=[], help="NAME=CKPT (repeat); "
                   "NAME=CKPT#DOMAIN for a translator and its target domain")
    p.add_argument("--target", action="append", default=[], help="NAME=render folder")
    p.add_argument("--estimator", default="crepe-full", choices=ESTIMATORS)
    p.add_argument("--hop", type=float, default=0.02, help="judge's hop in seconds")
    p.add_argument("--f0-method", default="yin", help="transfer's tracker (the verb's default)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--temperature", type=float, default=1.0, help="translators' sampling "
                   "temperature (a gaussian head's spread is scaled by it)")
    p.add_argument("--seconds", type=float, default=None, help="judge only each input's "
                   "first SECONDS (autoregressive translators sample every sample)")
    p.add_argument("--seed", type=int, default=0, help="translators' sampling seed (the "
                   "spread of the counts over seeds is the table's noise)")
    p.add_argument("--classifier", type=Path, default=None, help="an evaluation classifier "
                   "(waveloom train-classifier): each output note's family is judged by it")
    p.add_argument("--family", action="append", default=[], help="NAME=FAMILY: the family "
                   "the classifier should hear in model NAME's output (repeat)")
    p.add_argument("--figure", type=Path, default=None, help="a PNG: the first piece's input and "
                   "each model's output as mel spectrograms")
    p.add_argument("--figure-seconds", type=float, default=8.0)
    p.add_argument("--input-name", default="input (FluidR3 clarinet)", help="the inputs' row")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    import torch

    from waveloom.evaluate.pitch import get_estimator

    torch.set_num_threads(args.threads)
    items = held_out_inputs(args.inputs, args.pieces)
    models, targets = named_pairs(args.model, "--model"), named_pairs(args.target, "--target")
    families = named_pairs(args.family, "--family")
    args.classifier_model = None
    if args.classifier is not None:
        from waveloom.evaluate.classifier import load_classifier

        args.classifier_model = load_classifier(args.classifier)[0]
    elif families:
        raise SystemExit("--family needs --classifier")
    estimator = get_estimator(args.estimator, hop_seconds=args.hop)
    rows = {args.input_name: input_row(items, 16000, estimator, args.seconds)}
    for name, spec in models.items():
        tgt = Path(targets[name]) if name in targets else None
        rows[name] = run_model(name, spec, items, tgt, estimator, args, families.get(name))
        print(name, json.dumps(rows[name]), flush=True)
    if args.figure is not None:
        figure(args, items[0][0], models)
    text = table(rows, args.estimator)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text(text + "\n")
    (args.out / "results.json").write_text(json.dumps(
        {"pieces": [w.name for w, _ in items], "rows": rows}, indent=2))
    print(f"{len(items)} pieces\n{text}")


if __name__ == "__main__":
    main()
