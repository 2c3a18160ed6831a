"""A codec at several bitrates beside Opus and 8-bit mu-law, on held-out audio (issue 24).

Clips of ``--seconds`` from the ``--split`` examples of a cache (held out: pieces and a
SoundFont the codec never trained on), each

* encoded and decoded by the codec with the codebooks ``--bandwidths`` buy (kbps);
* through Opus in an OGG file written by soundfile (libsndfile's ``compression_level``: 1.0 is
  its lowest bitrate), bitrate measured from the file's size (container included);
* through 8-bit mu-law (128 kbps at 16 kHz);
* replaced by silence (what a coder that says nothing scores).

Scored against the original by multi-scale spectral distance (lower is better) and SI-SDR in
dB (higher is better; needs sample alignment, which a causal codec keeps), each a mean with a
95 % bootstrap interval over clips. Prints a markdown table; ``--record`` adds the rows to the
codec's card (waveloom/zoo).

    .venv/bin/python benchmarks/codec_eval.py CODEC.safetensors cache/chorales-fluid \
        [--split test] [--clips 24] [--seconds 5] [--bandwidths 1.5 3 6] [--record]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from waveloom.audio.mulaw import dequantize, quantize
from waveloom.audio.spectral import multiscale_spectral_distance
from waveloom.data.cache import AudioCache
from waveloom.evaluate.bootstrap import bootstrap_mean
from waveloom.evaluate.spectral import si_sdr
from waveloom.models.load import load_checkpoint

OPUS_LEVELS = (1.0, 0.95, 0.9)


def clip_indices(cache: AudioCache, split: str, count: int, seconds: float,
                 start_s: float = 2.0) -> list[int]:
    """The examples :func:`held_out_clips` cuts its clips from, evenly spread over the split."""
    length = int(seconds * cache.sample_rate)
    start = int(start_s * cache.sample_rate)
    pool = np.arange(len(cache.lengths)) if split == "all" else cache.split_indices(split)
    chosen = [int(i) for i in pool if cache.lengths[i] >= start + length]
    if len(chosen) < count:
        raise SystemExit(f"{cache.root}: {len(chosen)} {split} examples are long enough; "
                         f"ask for fewer --clips")
    return [chosen[p] for p in np.linspace(0, len(chosen) - 1, count).round().astype(int)]


def held_out_clips(cache: AudioCache, split: str, count: int, seconds: float,
                   start_s: float = 2.0) -> np.ndarray:
    """``count`` clips ``[count, T]`` from the split's examples (``all``: every example), one
    per example, from ``start_s`` in (2 s skips a piece's opening; 0 keeps a note's attack)."""
    length, start = int(seconds * cache.sample_rate), int(start_s * cache.sample_rate)
    return np.stack([np.asarray(cache.read(i, start, length), np.float32)
                     for i in clip_indices(cache, split, count, seconds, start_s)])


def pitch_judge(cache: AudioCache, indices: list[int], name: str):
    """``judge(clips) -> (on pitch, total)`` against the examples' MIDI pitch labels, by the
    strict judge ``name`` (50 cents; octave and fifth errors count as errors)."""
    from waveloom.evaluate.pitch import get_estimator, pitch_accuracy

    targets = [cache.entries[i].get("pitch") for i in indices]
    if any(t is None or int(t) < 0 for t in targets):
        raise SystemExit(f"{cache.root}: --pitch needs a pitch label on every clip (notes)")
    estimator = get_estimator(name)

    def judge(clips: np.ndarray) -> tuple[int, int]:
        report = pitch_accuracy(list(clips), [int(t) for t in targets], cache.sample_rate,
                                50.0, estimator)
        return report["correct"], report["total"]
    return judge


def through_opus(clip: np.ndarray, sr: int, level: float) -> tuple[np.ndarray, float]:
    """(the clip after an OGG/Opus round trip, its bitrate in kbps from the file size)."""
    buffer = io.BytesIO()
    sf.write(buffer, clip, sr, format="OGG", subtype="OPUS", compression_level=level)
    kbps = 8 * buffer.tell() / (len(clip) / sr) / 1000
    buffer.seek(0)
    back, _ = sf.read(buffer, dtype="float32")
    out = np.zeros_like(clip)
    out[: min(len(back), len(clip))] = back[: len(clip)]
    return out, kbps


def scores(originals: np.ndarray, decoded: np.ndarray) -> dict[str, object]:
    mss = [float(multiscale_spectral_distance(torch.from_numpy(a), torch.from_numpy(b)))
           for a, b in zip(originals, decoded)]
    sdr = [si_sdr(a, b) for a, b in zip(originals, decoded)]
    return {"mss": bootstrap_mean(mss), "si_sdr": bootstrap_mean(sdr)}


def _judged(judge, clips: np.ndarray) -> dict:
    """``{'pitch': (on pitch, total)}`` of ``clips`` by ``judge``, or {} without one."""
    return {} if judge is None else {"pitch": judge(clips)}


def rows(codec, originals: np.ndarray, sr: int, bandwidths: list[float],
         judge=None) -> list[dict]:
    """A row per coder; with ``judge`` (see :func:`pitch_judge`) each row also counts its
    clips on pitch, and a first row scores the input itself (the judge's ceiling)."""
    table = []
    audio = torch.from_numpy(originals)
    if judge is not None:
        table.append({"name": "input (no coding)", "kbps": float("nan"),
                      **_judged(judge, originals), **scores(originals, originals)})
    for bw in bandwidths:
        t0 = time.perf_counter()
        with torch.no_grad():
            decoded = codec.decode(codec.encode(audio, bw), length=audio.shape[-1])
        seconds = time.perf_counter() - t0
        decoded = decoded.float().numpy()
        table.append({"name": f"codec {bw:g} kbps", "kbps": bw,
                      "speed": originals.size / sr / seconds, **scores(originals, decoded),
                      **_judged(judge, decoded)})
    for level in OPUS_LEVELS:
        pairs = [through_opus(c, sr, level) for c in originals]
        kbps = float(np.mean([k for _, k in pairs]))
        opus = np.stack([p for p, _ in pairs])
        table.append({"name": f"Opus (compression_level {level:g})", "kbps": kbps,
                      **scores(originals, opus), **_judged(judge, opus)})
    mulaw = np.stack([dequantize(quantize(torch.from_numpy(c))).numpy() for c in originals])
    table.append({"name": "mu-law 8-bit", "kbps": 8 * sr / 1000,
                  **scores(originals, mulaw.astype(np.float32))})
    table.append({"name": "silence (floor)", "kbps": 0.0,
                  **scores(originals, np.zeros_like(originals))})
    return table


def bottleneck(codec, originals: np.ndarray, most: int, judge=None
               ) -> tuple[dict, list[str]]:
    """Where a codec loses: the decoder on the encoder's latents with no quantizer at all (a
    row like the others), and the residual quantizer's relative error ``|x - q_k| / |x|``
    with its first k codebooks (k = 1, 2, 4, ... ``most``), measured where the codes live
    (after ResidualVQ's shared projection to ``codebook_dim``, if any; in the latent space
    itself with ``model.per_codebook_projection``, whose residual stays there, so the two
    layouts' errors are not on one scale). An error that falls with k
    while the score stays flat means the decoder, not the bitrate, limits the codec; one that
    stays near 1 means the codebooks cannot follow the latents (e.g. unit cosine codes against
    latents of norm ~50)."""
    gen = codec.generator
    rvq = gen.quantizer
    audio = codec._pad(torch.from_numpy(originals))
    with torch.no_grad():
        z = gen.encoder(audio[:, None])
        plain = gen.decoder(z)[:, 0, : originals.shape[-1]].clamp(-1, 1)
        codes = gen.quantize(z)[1].transpose(1, 2).long()  # [B, F, n_q]
        x = rvq.project_in(z.transpose(1, 2))
        per_level = rvq.get_codes_from_indices(codes)  # [n_q, B, F, codebook_dim]
        lines = []
        k = 1
        while k <= most:
            err = (x - per_level[:k].sum(0)).norm() / x.norm().clamp_min(1e-12)
            lines.append(f"k={k}: {float(err):.3f}")
            k *= 2
    plain = plain.float().numpy()
    row = {"name": "decoder on unquantized latents", "kbps": float("nan"),
           **scores(originals, plain), **_judged(judge, plain)}
    return row, lines


def _markdown(table: list[dict]) -> str:
    judged = any("pitch" in r for r in table)
    lines = ["| coder | kbps | spectral distance (95 % CI) | SI-SDR dB (95 % CI) |"
             + (" on pitch |" if judged else ""),
             "|---|---:|---:|---:|" + ("---:|" if judged else "")]
    for r in table:
        m, s = r["mss"], r["si_sdr"]
        tail = ""
        if judged:
            tail = " {}/{} |".format(*r["pitch"]) if "pitch" in r else " - |"
        lines.append(f"| {r['name']} | {r['kbps']:.2f} | {m.mean:.2f} [{m.low:.2f}, "
                     f"{m.high:.2f}] | {s.mean:.2f} [{s.low:.2f}, {s.high:.2f}] |" + tail)
    return "\n".join(lines)


def _record(args: argparse.Namespace, table: list[dict], data: str) -> Path:
    from waveloom.zoo.records import Measurement, command_line, record

    command = command_line(sys.argv[1:], "benchmarks/codec_eval.py")
    path = None
    last = [r for r in table if r["name"].startswith("codec")][-1]
    for r in table:
        if r["name"] == f"Opus (compression_level {OPUS_LEVELS[0]:g})":
            est = r["mss"]  # the bar the issue sets: Opus at its lowest bitrate
            path = record(args.checkpoint, Measurement(
                metric="Opus at its lowest setting: spectral distance", value=round(est.mean, 3),
                data=f"{data}; the same clips through OGG/Opus at {r['kbps']:.2f} kbps measured",
                command=command, n=args.clips, higher_is_better=False,
                interval=(round(est.low, 3), round(est.high, 3))))
        if not r["name"].startswith("codec"):
            continue
        if "pitch" in r:
            k, n = r["pitch"]
            path = record(args.checkpoint, Measurement(
                metric=f"on pitch at {r['kbps']:g} kbps ({args.pitch}, 50 cents, octave errors "
                       "count)", value=round(100 * k / n, 1), unit="%", data=data,
                command=command, n=n, higher_is_better=True))
        for metric, key, higher in (("spectral distance", "mss", False),
                                    ("SI-SDR dB", "si_sdr", True)):
            est = r[key]
            path = record(args.checkpoint, Measurement(
                metric=f"{metric} at {r['kbps']:g} kbps", value=round(est.mean, 3),
                data=data, command=command, n=args.clips, higher_is_better=higher,
                interval=(round(est.low, 3), round(est.high, 3)),
                headline=key == "mss" and r is last))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("data", type=Path, help="a cache of held-out audio")
    parser.add_argument("--split", default="test", help="train | valid | test | all")
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--start", type=float, default=2.0,
                        help="seconds into each example a clip starts (0 for notes)")
    parser.add_argument("--bandwidths", type=float, nargs="+", default=[1.5, 3.0, 6.0])
    parser.add_argument("--record", action="store_true", help="add the codec rows to its card")
    parser.add_argument("--diagnose", action="store_true",
                        help="add the decoder on unquantized latents and the quantizer's "
                             "relative error per number of codebooks")
    parser.add_argument("--pitch", default=None, metavar="JUDGE",
                        help="also count clips on pitch by this strict judge (crepe-full, "
                             "crepe-tiny, pyin) against the cache's pitch labels (notes)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    codec, run = load_checkpoint(args.checkpoint)
    codec.eval()
    cache = AudioCache(args.data)
    cache.check_sample_rate(run.data.sample_rate)
    originals = held_out_clips(cache, args.split, args.clips, args.seconds, args.start)
    judge = None
    if args.pitch:
        indices = clip_indices(cache, args.split, args.clips, args.seconds, args.start)
        judge = pitch_judge(cache, indices, args.pitch)
    table = rows(codec, originals, cache.sample_rate, args.bandwidths, judge)
    errors = None
    if args.diagnose:
        row, errors = bottleneck(codec, originals, codec.config.n_q, judge)
        table.insert(len(args.bandwidths) + (judge is not None), row)
    data = (f"{args.clips} clips of {args.seconds:g} s from {args.start:g} s in, {args.split} "
            f"split of {args.data.name}")
    print(f"{args.checkpoint.name} on {data}\n")
    print(_markdown(table))
    speeds = ", ".join(f"{r['kbps']:g} kbps {r['speed']:.0f}x" for r in table if "speed" in r)
    print(f"\ncodec encode + decode, one thread, offline: {speeds} real time")
    if errors:
        print(f"residual quantizer's relative error |x - q_k| / |x| with k codebooks (code "
              f"space): {', '.join(errors)}")
    if args.record:
        print(f"recorded in {_record(args, table, data)}")


if __name__ == "__main__":
    main()
