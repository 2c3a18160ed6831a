"""``waveloom evaluate``: dispatch the requested metrics for one checkpoint and one cache split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from waveloom.errors import ConfigError, DataError

METRICS = ("nll",)


def evaluate(
    checkpoint: str | Path,
    *,
    data: str | Path,
    split: str = "test",
    metrics: list[str] = ("nll",),
    max_examples: int | None = None,
    device: str = "auto",
    progress: bool = True,
) -> dict[str, Any]:
    """Score ``checkpoint`` on ``split`` of the cache ``data``; return a JSON-ready report."""
    from waveloom.checkpoint import load_checkpoint
    from waveloom.data.cache import AudioCache
    from waveloom.generate import pick_device

    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ConfigError(f"unknown metric(s) {unknown}; available: {', '.join(METRICS)}")
    dev = pick_device(device)
    model, run = load_checkpoint(checkpoint, map_location=dev)
    cache = AudioCache(data)
    cache.check_sample_rate(run.data.sample_rate)
    indices = list(cache.split_indices(split))
    if not indices:
        raise DataError(f"{data}: split {split!r} is empty; splits here: {cache.split_counts()}")
    if max_examples is not None:
        indices = indices[:max_examples]
    report: dict[str, Any] = {
        "checkpoint": str(checkpoint),
        "family": run.family,
        "data": str(data),
        "split": split,
        "examples": len(indices),
    }
    if "nll" in metrics:
        if not hasattr(model, "log_prob"):
            raise ConfigError(f"{checkpoint}: a {run.family} model has no likelihood; drop nll")
        from waveloom.evaluate.nll import compressor_bits, model_nll_bits

        keys = model.conditioning_keys()
        conds = [{k: _int_or_unknown(cache.entries[i].get(k)) for k in keys} for i in indices]
        nll = model_nll_bits(
            model,
            (cache.clip(i) for i in indices),
            cond=conds,
            total=len(indices),
            device=dev,
            progress=progress,
        )
        report["nll"] = nll
        report["baselines"] = compressor_bits([cache.clip(i) for i in indices],
                                              cache.sample_rate)
    return report


def _int_or_unknown(value: Any) -> int:
    """Manifest value -> int, with None (unknown) as -1 (0 is a valid id, so no `or -1`)."""
    return -1 if value is None else int(value)
