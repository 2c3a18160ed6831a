"""Level-1 ADA reconstruction quality, for one level before a whole hierarchy exists.

4 clips of 2 s (from 5 s into each of the cache's first 4 examples) are encoded and decoded on
the fast engine at temperature 1 and scored by multi-scale spectral distance against the
originals, beside two references: the 8-bit mu-law round trip (the decoder's own quantisation
floor) and silence. Also prints the codes' perplexity.

    .venv/bin/python benchmarks/ada_level1_recon.py runs/ada-l1-small/model.safetensors CACHE
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

from waveloom.audio.mulaw import dequantize, quantize
from waveloom.audio.spectral import multiscale_spectral_distance
from waveloom.config import SamplingOptions
from waveloom.data.cache import AudioCache
from waveloom.models.load import load_checkpoint
from waveloom.nn.quantize import perplexity
from waveloom.sampling.sample import decode


def main() -> None:
    torch.set_num_threads(1)
    model, _ = load_checkpoint(sys.argv[1])
    cache = AudioCache(sys.argv[2])
    n = 32000
    clips = [np.asarray(cache.read(i, 16000 * (5 + 3 * i), n), np.float32) for i in range(4)]
    audio = torch.from_numpy(np.stack(clips))
    t0 = time.time()
    with torch.no_grad():
        codes = model.encode(audio)
        rec = decode(model, codes, None, n, SamplingOptions(seed=0, progress=False))
    seconds = time.time() - t0

    def msd(b: torch.Tensor, i: int) -> float:
        return float(multiscale_spectral_distance(audio[i], b))

    d = [msd(rec[i], i) for i in range(4)]
    m = [msd(dequantize(quantize(audio[i])), i) for i in range(4)]
    z = [msd(torch.zeros(n), i) for i in range(4)]
    print(f"spectral distance recon {np.mean(d):.2f} (per clip {', '.join(f'{x:.1f}' for x in d)}"
          f"); mu-law 8-bit {np.mean(m):.2f}; silence {np.mean(z):.2f}; code perplexity "
          f"{float(perplexity(codes.flatten(), model.codebook_size)):.0f}/{model.codebook_size}"
          f"; {seconds:.1f} s for {4 * n / 16000:g} s of audio")


if __name__ == "__main__":
    main()
