"""Set distances in an embedding: FAD (with its interval and FAD-inf) and KID, one entry each.

Every entry carries ``value``, ``ci`` (``[lo, hi]`` at the report's level) and ``n``
(``[n_generated, n_reference]``: the samples the number was computed from: clips with
``--fad-pool mean``, frames with ``frames``), because a distance between sets means little
without the set sizes: FAD is biased upwards when ``n`` is small (see :mod:`waveloom.evaluate.fad`)
and a warning naming that bias is returned whenever either set has fewer than 500 clips or fewer
clips than the embedding has dimensions (clips even with frame pooling: frames of one clip are
correlated).

* ``fad[EMB]``: FAD at the pooled ``n``, interval by bootstrap over rows (``--fad-bootstrap``);
* ``fad_inf[EMB]``: FAD-inf (Chong & Forsyth 2019) on every frame, interval from the fit;
* ``kid[EMB]``: unbiased MMD^2, cubic kernel (Binkowski et al. 2018), bootstrap interval;
* ``kad[EMB]``: the same with a Gaussian kernel, median-heuristic bandwidth (Chung et al. 2025).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np


def fad_entries(name: str, layer: str, gen: tuple[np.ndarray, np.ndarray],
                ref: tuple[np.ndarray, np.ndarray], *, pool: str, resamples: int,
                level: float, seed: int, fad_inf_points: int = 15) -> dict[str, Any]:
    """``fad[name]`` and ``fad_inf[name]`` from ``(frames [F, D], counts [N])`` of each set."""
    from waveloom.evaluate.embeddings import pool_frames
    from waveloom.evaluate.fad import fad_from_embeddings, fad_inf, fad_interval

    g, r = pool_frames(*gen, pool), pool_frames(*ref, pool)
    entry = {
        "value": fad_from_embeddings(g, r),
        "ci": fad_interval(g, r, resamples=resamples, level=level, seed=seed),
        "n": [len(g), len(r)],
        "embedding": name, "layer": layer, "pool": pool, "dim": int(g.shape[1]),
        "n_generated": len(gen[1]), "n_reference": len(ref[1]),
        "samples_generated": int(g.shape[0]), "samples_reference": int(r.shape[0]),
        "level": level, "resamples": resamples,
    }
    out = {f"fad[{name}]": entry}
    if fad_inf_points > 1:
        inf = fad_inf(gen[0], ref[0], points=fad_inf_points, level=level, seed=seed)
        inf["n_frames"] = [int(gen[0].shape[0]), int(ref[0].shape[0])]
        inf["n"] = [len(gen[1]), len(ref[1])]  # clips: the frames come from these
        out[f"fad_inf[{name}]"] = inf
    return out


def kid_entry(name: str, gen: tuple[np.ndarray, np.ndarray], ref: tuple[np.ndarray, np.ndarray],
              *, pool: str, resamples: int, level: float, seed: int, subsets: int = 100,
              subset_size: int = 1000, kernel: str = "kid") -> dict[str, Any]:
    """``kid[name]`` (``kernel='kid'``) or ``kad[name]`` (``'kad'``) from ``(frames, counts)``
    of each set, pooled like FAD."""
    from waveloom.evaluate.embeddings import pool_frames
    from waveloom.evaluate.kid import kad, kid

    g, r = pool_frames(*gen, pool), pool_frames(*ref, pool)
    fn = {"kid": kid, "kad": kad}[kernel]
    entry = fn(g, r, subsets=subsets, subset_size=subset_size, resamples=resamples,
               level=level, seed=seed)
    entry.update(embedding=name, pool=pool, dim=int(g.shape[1]))
    return {f"{kernel}[{name}]": entry}


def bias_warnings(entries: dict[str, Any], *, echo: bool = True) -> list[str]:
    """Warnings for every ``fad[...]`` entry computed from too few samples (also on stderr)."""
    from waveloom.evaluate.fad import small_n_warning

    found = []
    for key, entry in entries.items():
        if key.startswith("fad["):
            # Clips, not frames: frames of one clip are correlated, so 18 clips of 21 frames
            # are not 378 samples' worth of covariance.
            text = small_n_warning(key, min(entry["n_generated"], entry["n_reference"]),
                                   entry["dim"])
            if text:
                found.append(text)
                if echo:
                    print(f"warning: {text}", file=sys.stderr)
    return found
