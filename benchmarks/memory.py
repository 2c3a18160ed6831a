"""Peak training memory vs window length, with and without activation checkpointing.

Each measurement runs in a fresh process (so high-water marks do not leak between runs): build
the preset's model and run one forward + backward on a batch of 1 window. Two numbers:

* activation memory: bytes of the tensors autograd saves for backward (counted exactly with
  ``saved_tensors_hooks``) -- what activation checkpointing exists to cut;
* peak growth: ``torch.cuda.max_memory_allocated`` on a GPU, or the growth of the process's
  peak RSS on a CPU (coarse: glibc keeps freed memory, so recomputation's temporaries count).

    .venv/bin/python benchmarks/memory.py --preset configs/wavenet/small.yaml
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time, torch
from waveloom.models.load import load_config
from waveloom.models.registry import build_model
preset, length, flag, device = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
torch.set_num_threads(1)
run = load_config(preset, [f"model.checkpoint_activations={flag}"])
model = build_model(run).to(device).train()
batch = {k: v.to(device) for k, v in model.example_batch(1, model.context + length).items()}
def peak():
    if device == "cuda":
        return torch.cuda.max_memory_allocated()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
saved = {}
def pack(t):
    saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
    return t
base = peak()
t0 = time.perf_counter()
with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
    loss = model.loss(batch)["loss"]
loss.backward()
print(json.dumps({"bytes": peak() - base, "saved": sum(saved.values()),
                  "seconds": time.perf_counter() - t0}))
"""


def measure(preset: str, length: int, flag: bool, device: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, preset, str(length), str(flag), device],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="configs/wavenet/small.yaml")
    p.add_argument("--device", default="cpu")
    p.add_argument("--exponents", default="14,15,16,17")
    args = p.parse_args()
    print(f"{args.preset} on {args.device}, batch 1, one forward + backward")
    peak = "CUDA peak" if args.device == "cuda" else "peak RSS"
    print(f"{'window':>8} | activations MiB: {'plain':>6} {'ckpt':>6} {'ratio':>5} | "
          f"{peak} growth MiB: {'plain':>6} {'ckpt':>6} | seconds: {'plain':>6} {'ckpt':>6}")
    for e in (int(x) for x in args.exponents.split(",")):
        a = measure(args.preset, 2**e, False, args.device)
        b = measure(args.preset, 2**e, True, args.device)
        mib = 2**20
        print(f"{2**e:>8} | {'':17}{a['saved'] / mib:>6.0f} {b['saved'] / mib:>6.0f} "
              f"{b['saved'] / a['saved']:>5.2f} | {'':{len(peak) + 13}}{a['bytes'] / mib:>6.0f} "
              f"{b['bytes'] / mib:>6.0f} | {'':9}{a['seconds']:>6.2f} {b['seconds']:>6.2f}")


if __name__ == "__main__":
    main()
