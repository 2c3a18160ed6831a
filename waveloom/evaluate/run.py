"""``waveloom evaluate``: dispatch the requested metrics for a checkpoint or a set of audio files.

The target is one of

* a checkpoint (``model.safetensors``): ``nll`` scores it on ``--data``; the sample metrics
  first generate a labelled set from it (:mod:`waveloom.evaluate.generated`);
* a folder of audio files (labels from ``labels.json``, an NSynth ``examples.json`` or the file
  names) or a cache (``--split`` picks one split; default all clips).

Sample metrics (each in its own module; those that are means carry a bootstrap interval):

* ``fad``: Fréchet distance of embedding statistics, one entry per embedding
  (``fad[crepe-tiny]``, ``fad[waveloom-classifier]``, ``fad[torchscript:...]``), with a
  bootstrap interval and FAD-inf (``fad_inf[...]``), and a warning when ``n`` is too small;
* ``kid``: kernel inception distance (unbiased MMD^2) on the same embeddings (``kid[...]``);
* ``kad``: the same estimator with a Gaussian kernel, median-heuristic bandwidth (``kad[...]``);
* ``pitch``: accuracy of the labelled pitch under an outside estimator
  (``pitch[crepe-tiny,50c]``);
* ``classifier``: accuracy and Inception Score of the family and pitch heads of a classifier
  trained with ``waveloom train-classifier``;
* ``ndb``: number of statistically different bins against the reference;
* ``spectral``: multi-scale spectral distance and SI-SDR against same-named reference clips.

``fad``, ``kid``, ``kad``, ``ndb`` and ``spectral`` compare with ``--reference`` (a cache or
folder; by default the ``--data`` cache), read at ``--reference-split``.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from waveloom.errors import ConfigError, DataError
from waveloom.evaluate.bootstrap import bootstrap_mean
from waveloom.evaluate.report import jsonable

METRICS = ("nll", "fad", "kid", "kad", "pitch", "classifier", "ndb", "spectral")
SAMPLE_METRICS = METRICS[1:]
_NEEDS_REFERENCE = ("fad", "kid", "kad", "ndb", "spectral")


@dataclass
class EvalOptions:
    """Every knob of ``waveloom evaluate`` (CLI flags in brackets)."""

    data: str | Path | None = None  # cache for nll, default reference [--data]
    split: str | None = None  # nll: split of --data (default test); target cache: its split
    reference: str | Path | None = None  # [--reference]
    reference_split: str | None = None  # [--reference-split]
    max_examples: int | None = None  # cap on target clips / nll examples [--max-examples]
    max_reference: int | None = None  # cap on reference clips [--max-reference]
    clip_seconds: float | None = None  # judge only each clip's first seconds [--clip-seconds]
    sample_rate: int = 16000  # every set is read at this rate [--sr]
    device: str = "auto"
    progress: bool = True
    labels: str | Path | None = None  # sidecar JSON for the target [--labels]
    name_pattern: str | None = None  # labels from file names [--labels-from-names]
    embeddings: list[str] | None = None  # [--embeddings]; default crepe-tiny (+ classifier)
    fad_pool: str = "mean"  # [--fad-pool]
    fad_bootstrap: int = 200  # resamples of the FAD interval; 0: none [--fad-bootstrap]
    fad_inf_points: int = 15  # set sizes of the FAD-inf fit; 0: no FAD-inf [--fad-inf-points]
    kid_subsets: int = 100  # [--kid-subsets]
    kid_subset_size: int = 1000  # [--kid-subset-size]
    crepe_hop: float = 0.05  # seconds between CREPE embedding frames [--crepe-hop]
    stats_cache: str | Path | None = "default"  # None disables [--stats-cache / --no-...]
    pitch_estimator: str = "crepe-tiny"  # [--pitch-estimator]
    pitch_hop: float = 0.02  # seconds between CREPE pitch frames [--pitch-hop]
    pitch_decoder: str = "weighted"  # CREPE decoder: weighted | viterbi [--pitch-decoder]
    pitch_targets: str | Path | None = None  # CSV name,pitch overriding labels [--pitch-targets]
    tolerance_cents: float = 50.0  # [--tolerance-cents]
    classifier: str | Path | None = None  # [--classifier]
    ndb_k: int = 50  # [--ndb-k]
    ndb_alpha: float = 0.05
    ndb_features: str = "logmel"  # logmel or an embedding name [--ndb-features]
    ndb_seconds: float | None = None  # default: shorter median clip length, at most 4 s
    bootstrap: int = 1000  # resamples; 0 disables intervals [--bootstrap]
    level: float = 0.95  # [--ci]
    seed: int = 0
    n_generate: int = 64  # checkpoint targets [--n-generate]
    seconds: float = 4.0  # length of generated samples [--seconds]
    temperature: float = 1.0
    denoising_steps: int | None = None  # diffusion checkpoints [--steps]
    sampler: str | None = None  # diffusion checkpoints [--sampler]
    generated_out: str | Path | None = None  # where generated samples go [--generated-out]


def target_kind(target: str | Path) -> str:
    """'checkpoint' (a file), 'cache' (a prepared cache) or 'folder' (audio files)."""
    path = Path(target)
    if path.is_file():
        return "checkpoint"
    if (path / "cache.json").is_file():
        return "cache"
    if path.is_dir():
        return "folder"
    raise DataError(f"{path}: not found; give a checkpoint, a folder of audio or a cache")


def evaluate(target: str | Path, *, metrics=("nll",), **options: Any) -> dict[str, Any]:
    """Score ``target`` with ``metrics``; return a JSON-ready report (no NaN or inf values).

    Keyword options are the fields of :class:`EvalOptions`.
    """
    unknown_opts = set(options) - set(EvalOptions.__dataclass_fields__)
    if unknown_opts:
        raise TypeError(f"unknown evaluate option(s): {sorted(unknown_opts)}")
    opts = EvalOptions(**options)
    metrics = list(dict.fromkeys(metrics))
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ConfigError(f"unknown metric(s) {unknown}; available: {', '.join(METRICS)}")
    kind = target_kind(target)
    report: dict[str, Any] = {"target": str(target), "kind": kind}
    if "nll" in metrics:
        if kind != "checkpoint":
            raise ConfigError(f"{target}: nll needs a checkpoint; drop nll for audio folders")
        report.update(_nll(target, opts))
    sample_metrics = [m for m in metrics if m in SAMPLE_METRICS]
    if sample_metrics:
        report.update(_sample_metrics(target, kind, sample_metrics, opts))
    return jsonable(report)


# ----------------------------------------------------------------------------------- nll


def _event_nll(model, run, checkpoint, split: str, opts: EvalOptions, dev) -> dict[str, Any]:
    """A symbolic model (data_kind "symbolic") on a SymbolicCache: bits per event over whole
    pieces of ``split``, beside Witten-Bell n-grams (n = 1..5) fitted on its train split."""
    from waveloom.data.symbolic import SymbolicCache
    from waveloom.evaluate.event_nll import symbolic_nll_report

    cache = SymbolicCache(opts.data)
    nll = symbolic_nll_report(model, cache, split, int(run.data.window), device=dev,
                              max_pieces=opts.max_examples)
    return {"checkpoint": str(checkpoint), "family": run.family, "data": str(opts.data),
            "split": split, "examples": nll["pieces"], "nll": nll, "nll_kind": "events"}



def _nll(checkpoint: str | Path, opts: EvalOptions) -> dict[str, Any]:
    from waveloom.data.cache import AudioCache
    from waveloom.device import pick_device
    from waveloom.evaluate.nll import code_compressor_bits, compressor_bits, model_nll_bits
    from waveloom.models.base import Autoencoder
    from waveloom.models.load import load_checkpoint

    if opts.data is None:
        raise ConfigError("nll needs --data CACHE (the split to score)")
    split = opts.split or "test"
    dev = pick_device(opts.device)
    model, run = load_checkpoint(checkpoint, map_location=dev)
    if getattr(model, "data_kind", "audio") == "symbolic":
        return _event_nll(model, run, checkpoint, split, opts, dev)
    cache = AudioCache(opts.data)
    cache.check_sample_rate(run.data.sample_rate)
    indices = list(cache.split_indices(split))
    if not indices:
        raise DataError(f"{opts.data}: split {split!r} is empty; splits here: "
                        f"{cache.split_counts()}")
    if opts.max_examples is not None:
        indices = indices[: opts.max_examples]
    if not hasattr(model, "log_prob"):
        raise ConfigError(f"{checkpoint}: a {run.family} model has no likelihood; drop nll")
    if getattr(model, "output_kind", "audio") != "audio":
        raise ConfigError(f"{checkpoint}: a {run.family} model scores codes, not samples, and "
                          "nll here counts bits per audio sample; read its validation "
                          "bits_per_code in the run's log instead")
    keys = model.conditioning_keys()
    conds = [{k: _int_or_unknown(cache.entries[i].get(k)) for k in keys} for i in indices]
    nll = model_nll_bits(model, (cache.clip(i) for i in indices), cond=conds,
                         total=len(indices), device=dev, progress=opts.progress)
    report = {
        "checkpoint": str(checkpoint),
        "family": run.family,
        "data": str(opts.data),
        "split": split,
        "examples": len(indices),
        "nll": nll,
    }
    # What the number may be compared with depends on what the model is.
    if isinstance(model, Autoencoder):
        # p(x | codes of x): the decoder was handed a summary of the very audio it scores.
        report["nll_kind"] = "conditional"
    elif cache.info.get("codes"):
        # A prior over a code cache: its NLL is a code length of the code stream.
        report["nll_kind"] = "codes"
        report["baselines"] = code_compressor_bits(
            np.asarray(cache.read_raw(i)) - 1 for i in indices)
    else:
        report["nll_kind"] = "audio"
        report["baselines"] = compressor_bits([cache.clip(i) for i in indices],
                                              cache.sample_rate)
    return report


def _int_or_unknown(value: Any) -> int:
    """Manifest value -> int, with None (unknown) as -1 (0 is a valid id, so no `or -1`)."""
    return -1 if value is None else int(value)


# --------------------------------------------------------------------------- sample sets


def _sample_metrics(target, kind: str, metrics: list[str], opts: EvalOptions) -> dict[str, Any]:
    from waveloom.evaluate.audioset import load_set

    ref_spec = opts.reference if opts.reference is not None else opts.data
    reference = None
    if ref_spec is not None:
        reference = load_set(ref_spec, sample_rate=opts.sample_rate, split=opts.reference_split,
                             name_pattern=opts.name_pattern, max_clips=opts.max_reference,
                             seed=opts.seed, max_seconds=opts.clip_seconds)
    missing = [m for m in metrics if m in _NEEDS_REFERENCE]
    if missing and reference is None:
        raise ConfigError(f"{', '.join(missing)} compare with real audio: pass --reference "
                          "(a cache or folder) or --data CACHE")
    out: dict[str, Any] = {}
    if kind == "checkpoint":
        from waveloom.evaluate.generated import generate_set

        folder = opts.generated_out or tempfile.mkdtemp(prefix="waveloom-eval-")
        generate_set(target, folder, reference=reference, n=opts.n_generate,
                     seconds=opts.seconds, temperature=opts.temperature, seed=opts.seed,
                     denoising_steps=opts.denoising_steps, sampler=opts.sampler,
                     device=opts.device, progress=opts.progress)
        target, out["generated_folder"] = folder, str(folder)
    generated = load_set(target, sample_rate=opts.sample_rate,
                         split=None if kind == "checkpoint" else opts.split,
                         labels=opts.labels, name_pattern=opts.name_pattern,
                         max_clips=opts.max_examples, seed=opts.seed,
                         max_seconds=opts.clip_seconds)
    out["generated"] = {"source": generated.description, "clips": len(generated)}
    if reference is not None:
        out["reference"] = {"source": reference.description, "clips": len(reference)}
    out["sample_rate"] = opts.sample_rate
    out["bootstrap"] = {"resamples": opts.bootstrap, "level": opts.level, "seed": opts.seed}
    embedded: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    timing = out["seconds"] = {}
    for metric in metrics:
        t0 = time.monotonic()
        if metric == "fad":
            entries = _fad(generated, reference, opts, embedded)
            warned = _bias_warnings(entries, opts)
            if warned:
                out.setdefault("warnings", []).extend(warned)
        elif metric in ("kid", "kad"):
            entries = _kid(generated, reference, opts, embedded, kernel=metric)
        elif metric == "pitch":
            entries = _pitch(generated, opts)
        elif metric == "classifier":
            entries = _classifier(generated, opts)
        elif metric == "ndb":
            entries = _ndb(generated, reference, opts, embedded)
        else:
            entries = _spectral(generated, reference, opts)
        timing[metric] = round(time.monotonic() - t0, 3)
        out.update(entries)
    return out


def _interval(values, opts: EvalOptions) -> dict[str, Any]:
    return bootstrap_mean(values, resamples=opts.bootstrap, level=opts.level,
                          seed=opts.seed).to_dict()


def _embedding_specs(opts: EvalOptions) -> list[str]:
    if opts.embeddings:
        return list(opts.embeddings)
    return ["crepe-tiny"] + (["waveloom-classifier"] if opts.classifier else [])


def _cache_dir(opts: EvalOptions) -> Path | None:
    from waveloom.evaluate.embeddings import default_cache_dir

    if opts.stats_cache is None:
        return None
    return default_cache_dir() if opts.stats_cache == "default" else Path(opts.stats_cache)


def _embed_frames(spec: str, generated, reference, opts: EvalOptions, embedded: dict
                  ) -> tuple[Any, tuple, tuple]:
    """(embedding, (frames, counts) generated, (frames, counts) reference), reused across
    metrics: one pass per embedding serves FAD (any pooling), FAD-inf, KID and NDB."""
    from waveloom.device import pick_device
    from waveloom.evaluate.embeddings import embed_set_frames, get_embedding

    extra = {"hop_seconds": opts.crepe_hop} if spec.startswith("crepe-") else {}
    emb = get_embedding(spec, device=str(pick_device(opts.device)), classifier=opts.classifier,
                        **extra)
    key = emb.key()
    if key not in embedded:
        ref = embed_set_frames(emb, reference, cache_dir=_cache_dir(opts), progress=opts.progress)
        gen = embed_set_frames(emb, generated, progress=opts.progress)
        embedded[key] = (gen, ref)
    return emb, *embedded[key]


def _embed_both(spec: str, generated, reference, opts: EvalOptions, pool: str,
                embedded: dict) -> tuple[Any, np.ndarray, np.ndarray]:
    """(embedding, generated [N_g, D], reference [N_r, D]) pooled with ``pool``."""
    from waveloom.evaluate.embeddings import pool_frames

    emb, gen, ref = _embed_frames(spec, generated, reference, opts, embedded)
    return emb, pool_frames(*gen, pool), pool_frames(*ref, pool)


def _fad(generated, reference, opts: EvalOptions, embedded: dict) -> dict[str, Any]:
    from waveloom.evaluate.distances import fad_entries

    out = {}
    for spec in _embedding_specs(opts):
        emb, gen, ref = _embed_frames(spec, generated, reference, opts, embedded)
        n_gen = len(gen[1]) if opts.fad_pool == "mean" else len(gen[0])
        n_ref = len(ref[1]) if opts.fad_pool == "mean" else len(ref[0])
        if min(n_gen, n_ref) < 2:
            raise DataError("FAD needs at least 2 clips (or frames) in each set")
        out.update(fad_entries(emb.name, emb.layer, gen, ref, pool=opts.fad_pool,
                               resamples=min(opts.bootstrap, opts.fad_bootstrap),
                               level=opts.level, seed=opts.seed,
                               fad_inf_points=opts.fad_inf_points))
    return out


def _bias_warnings(entries: dict[str, Any], opts: EvalOptions) -> list[str]:
    from waveloom.evaluate.distances import bias_warnings

    return bias_warnings(entries, echo=True)


def _kid(generated, reference, opts: EvalOptions, embedded: dict, kernel: str = "kid"
         ) -> dict[str, Any]:
    """``kid[EMB]`` (cubic kernel) or ``kad[EMB]`` (Gaussian kernel) per embedding."""
    from waveloom.evaluate.distances import kid_entry

    out = {}
    for spec in _embedding_specs(opts):
        emb, gen, ref = _embed_frames(spec, generated, reference, opts, embedded)
        if min(len(gen[1]), len(ref[1])) < 2:
            raise DataError(f"{kernel.upper()} needs at least 2 clips in each set")
        out.update(kid_entry(emb.name, gen, ref, pool=opts.fad_pool, resamples=opts.bootstrap,
                             level=opts.level, seed=opts.seed, subsets=opts.kid_subsets,
                             subset_size=opts.kid_subset_size, kernel=kernel))
    return out


def _pitch(generated, opts: EvalOptions) -> dict[str, Any]:
    from tqdm.auto import tqdm

    from waveloom.device import pick_device
    from waveloom.evaluate.pitch import get_estimator, pitch_accuracy, read_targets_csv

    if opts.pitch_targets is not None:
        table = read_targets_csv(opts.pitch_targets)
        missing = [n for n in generated.names if n not in table]
        if missing:
            raise DataError(f"{opts.pitch_targets}: no pitch for {len(missing)} clip(s) "
                            f"(e.g. {missing[0]!r}); add rows name,pitch")
        targets = [table[n] for n in generated.names]
    else:
        targets = generated.require_labels("pitch", "the pitch metric")
    estimator = get_estimator(opts.pitch_estimator, device=str(pick_device(opts.device)),
                              hop_seconds=opts.pitch_hop, decoder=opts.pitch_decoder)
    clips = tqdm(generated.clips(), total=len(generated), desc=f"pitch[{estimator.name}]",
                 unit="clip", disable=not opts.progress)
    t0 = time.monotonic()
    result = pitch_accuracy(clips, targets, generated.sample_rate, opts.tolerance_cents,
                            estimator)
    seconds = time.monotonic() - t0
    flags = [float(r["correct"]) for r in result["notes"]]
    for name, row in zip(generated.names, result["notes"]):
        row["name"] = name
    key = f"pitch[{result['estimator']},{opts.tolerance_cents:g}c]"
    entry = {"accuracy": _interval(flags, opts), "estimator": result["estimator"],
             "tolerance_cents": opts.tolerance_cents, "errors": result["errors"],
             "seconds": round(seconds, 3), "notes": result["notes"]}
    frames = getattr(estimator, "frames_run", None)
    if frames is not None:
        entry.update(hop_seconds=opts.pitch_hop, decoder=opts.pitch_decoder, frames=frames)
    return {key: entry}


def _classifier(generated, opts: EvalOptions) -> dict[str, Any]:
    from waveloom.device import pick_device
    from waveloom.evaluate.classifier import (
        correct_flags,
        inception_score,
        load_classifier,
        predict,
    )

    if opts.classifier is None:
        raise ConfigError("the classifier metric needs --classifier FILE (train one with "
                          "`waveloom train-classifier CACHE --out FILE`)")
    model, trained = load_classifier(opts.classifier, str(pick_device(opts.device)))
    preds = predict(model, generated, progress=opts.progress)
    out = {}
    for head, probs, classes in (("family", preds.family, model.cfg.families),
                                 ("pitch", preds.pitch, model.cfg.pitches)):
        entry: dict[str, Any] = {"inception_score": inception_score(probs),
                                 "classes": len(classes), "classifier": str(opts.classifier),
                                 "validation_accuracy": trained.get(f"val_{head}_accuracy")}
        labels = generated.label_values(head)
        if all(v is not None for v in labels):
            flags, unknown = correct_flags(probs, classes, labels)
            entry["accuracy"] = _interval(flags, opts)
            entry["unknown_labels"] = unknown
        else:
            entry["accuracy"] = None
            entry["note"] = f"accuracy needs a {head} label on every clip"
        out[f"classifier[{head}]"] = entry
    return out


def _median_seconds(audio_set) -> float:
    return statistics.median(len(c) for c in audio_set.clips()) / audio_set.sample_rate


def _ndb(generated, reference, opts: EvalOptions, embedded: dict) -> dict[str, Any]:
    from waveloom.evaluate.ndb import logmel_images, ndb

    if opts.ndb_features == "logmel":
        seconds = opts.ndb_seconds or min(4.0, _median_seconds(reference),
                                          _median_seconds(generated))
        ref = logmel_images(reference, seconds, progress=opts.progress)
        gen = logmel_images(generated, seconds, progress=opts.progress)
        features = f"logmel ({seconds:g} s)"
        name = "logmel"
    else:
        emb, gen, ref = _embed_both(opts.ndb_features, generated, reference, opts, "mean",
                                    embedded)
        features = f"{emb.name} (mean-pooled)"
        name = emb.name
    result = ndb(ref, gen, k=opts.ndb_k, alpha=opts.ndb_alpha, seed=opts.seed,
                 resamples=opts.bootstrap, level=opts.level)
    result["features"] = features
    return {f"ndb[{name},k={opts.ndb_k}]": result}


def _spectral(generated, reference, opts: EvalOptions) -> dict[str, Any]:
    from waveloom.evaluate.spectral import reconstruction_scores

    scores = reconstruction_scores(generated, reference)
    sdr = [v for v in scores["si_sdr"] if math.isfinite(v)]
    return {
        "mss": {"distance": _interval(scores["mss"], opts), "pairs": len(scores["mss"]),
                "length_mismatches": scores["length_mismatches"]},
        "si_sdr": {"db": _interval(sdr, opts), "pairs": len(scores["si_sdr"]),
                   "undefined": len(scores["si_sdr"]) - len(sdr)},
    }
