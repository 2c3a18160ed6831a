"""The step-sampling contract between networks (models) and engines (:mod:`waveloom.sampling`).

Networks do not sample themselves: a family whose network is a WaveNet stack (WaveNet, the
NSynth autoencoder, an ADA level, the code prior) derives from :class:`StepSampled` and exposes
what one step needs -- ``stack``, ``head``, :meth:`StepSampled.sampling_plan` (the history codes,
a global vector and sample-rate local features: a :class:`SamplingPlan`) and
:meth:`StepSampled.output` (engine tokens -> the contract's output) -- and the engines of
:mod:`waveloom.sampling` run it (:func:`waveloom.sampling.sample.sample` is the entry point).
This module sits at the models layer so both sides import it downward: the plan's dataclass,
the one way randomness is drawn (:func:`draw_uniforms`), the request check every family starts
with (:func:`check_request`), and the parts of ``sampling_plan`` every such family shares (how a
family makes its local features differs -- a mel, a piano roll, an upsampled autoencoder code --
but the history and the labels are resolved the same way everywhere).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from waveloom.audio.mulaw import quantize
from waveloom.errors import ConfigError
from waveloom.nn.conditioning import GlobalConditioning


@dataclass
class SamplingPlan:
    """What the engine needs, resolved by the model from the user's ``cond``.

    prefix: [n, P] long input codes of the history (a prime, padded with silence); P >= 1.
    g: [n, G] global conditioning vector, or None.
    local: [n, L, P + length] sample-rate local features on a timeline whose position 0 is
        ``prefix[:, 0]``; the output that predicts position ``s`` uses ``local[..., s]``. A
        tensor, or a :class:`LocalFeatures` that computes the spans engines slice from it
        (a WaveNet's clock features: memory then does not grow with the length).
    """

    prefix: Tensor
    g: Tensor | None = None
    local: Tensor | LocalFeatures | None = None


class LocalFeatures:
    """Sample-rate local features ``[n, L, total]`` computed on demand instead of held whole.

    A WaveNet's note clock and pitch excitation are functions of the sample's time, so an
    hour of output need not hold 57.6 M x 6 floats per stream (1.4 GB at n = 1): engines
    slice this like the tensor it stands for (``local[..., a:b]``, ``local[b:b+1, :, a:b]``,
    ``.shape``) and get a tensor of that span. ``compute(lo, hi)`` gives the features of
    timeline positions ``lo .. hi - 1`` ([n, L, hi - lo]); it is always called on whole
    blocks of :attr:`BLOCK` samples of one fixed grid (the last block runs past ``total``
    and is cropped), on one torch thread, so a span's values never depend on how the engine
    cuts its chunks: every element of a block goes through the same vectorised path (a
    vectorised ``exp`` or ``sin`` and its scalar remainder loop may differ in the last bit).
    The last two blocks are kept, as engines read consecutive spans.
    """

    #: Samples per computed block; a multiple of every SIMD width, so no element of a block
    #: takes a scalar remainder path.
    BLOCK = 1 << 12

    def __init__(self, n: int, channels: int, total: int,
                 compute: Callable[[int, int], Tensor]) -> None:
        self.shape = torch.Size((n, channels, total))
        self._compute = compute
        self._kept: dict[int, Tensor] = {}

    def _block(self, index: int) -> Tensor:
        if index not in self._kept:
            before = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                block = self._compute(index * self.BLOCK, (index + 1) * self.BLOCK)
            finally:
                torch.set_num_threads(before)
            if len(self._kept) >= 2:
                del self._kept[min(self._kept)]
            self._kept[index] = block
        return self._kept[index]

    def span(self, lo: int, hi: int) -> Tensor:
        """The features of positions ``lo .. hi - 1`` (clipped to ``[0, total)``)."""
        total = self.shape[-1]
        lo, hi = max(0, min(lo, total)), max(0, min(hi, total))
        if hi <= lo:
            return self._block(0)[..., :0]
        first, last = lo // self.BLOCK, (hi - 1) // self.BLOCK
        parts = [self._block(i) for i in range(first, last + 1)]
        joined = parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)
        start = first * self.BLOCK
        return joined[..., lo - start : hi - start]

    def materialise(self) -> Tensor:
        """The whole ``[n, L, total]`` tensor (what a plan held before features streamed)."""
        return self.span(0, self.shape[-1])

    def __getitem__(self, key: Any) -> Tensor:
        key = key if isinstance(key, tuple) else (key,)
        last = key[-1]
        if (isinstance(last, slice) and last.step in (None, 1)
                and (key[0] is Ellipsis or len(key) == 3)):
            lo, hi, _ = last.indices(self.shape[-1])
            rest = key[:-1] + (slice(None),)
            return self.span(lo, hi)[rest]
        return self.materialise()[key]


def draw_uniforms(seed: int | None, length: int, n: int, per_step: int) -> Tensor:
    """All the randomness of one generation: uniforms [length, n, per_step] in [0, 1).

    Drawn on the CPU from a generator seeded with ``seed`` (a fresh random seed if None), so
    the same seed gives the same samples on any device and with any engine; heads turn row
    ``t`` into a code by inverse CDF.
    """
    gen = torch.Generator(device="cpu")
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(int(seed))
    return torch.rand(length, n, per_step, generator=gen)


def check_request(n: int, length: int, temperature: float, unit: str = "length") -> None:
    """One-line errors for a sampling request no model can serve (every sampling path starts
    with this)."""
    if n <= 0 or length <= 0:
        raise ConfigError(f"n={n} and {unit}={length} must be positive")
    if not temperature > 0:
        raise ConfigError(f"temperature={temperature} must be > 0")


class StepSampled:
    """Mixin of the families the sampling engines run one step at a time.

    Subclasses are :class:`~waveloom.models.base.Generative` modules with ``stack`` (a
    :class:`~waveloom.nn.wavenet.WaveNetStack`) and ``head`` (:mod:`waveloom.nn.heads`). What
    :func:`waveloom.sampling.sample.sample` does with one: ``cond = sampling_cond(n, length,
    cond, seed)``, tokens ``[n, length]`` from the engine (which calls :meth:`sampling_plan`),
    then ``output(tokens)``.
    """

    #: what ``length`` counts, for error messages ("frames" for a code prior).
    length_unit: ClassVar[str] = "length"

    def generate(self, n: int, length: int, cond: dict[str, Any] | None = None,
                 options: Any = None) -> Tensor:
        """Not here: the engines draw (networks apart from sampling loops)."""
        raise NotImplementedError(
            f"{type(self).__name__} is sampled by the engines: call "
            "waveloom.sampling.sample.sample(model, n, length, cond, options)")

    def vocode_request(self, mel: Any) -> tuple[int, int, dict[str, Any]]:
        """A log mel [n, M, F] -> ``(n, length, cond)`` to sample; only a mel-conditioned
        family overrides this."""
        raise ConfigError(f"{type(self).__name__} has no mel input; it cannot vocode mels")

    def sampling_plan(self, n: int, length: int, cond: dict[str, Any] | None = None,
                      prime: Tensor | None = None) -> SamplingPlan:
        """Resolve ``cond`` (and an audio ``prime`` [n, P]) into the engine's inputs."""
        raise NotImplementedError

    def sampling_cond(self, n: int, length: int, cond: dict[str, Any],
                      seed: int | None) -> dict[str, Any]:
        """The ``cond`` the engine runs on for ``sample`` (autoencoders resolve here what to
        decode: a given code, the code of ``cond['audio']``, or one drawn with ``seed``)."""
        return cond

    def output(self, tokens: Tensor) -> Tensor:
        """Engine tokens [n, length] long -> what ``sample`` returns: audio in [-1, 1]."""
        return self.head.decode(tokens).clamp(-1.0, 1.0)  # type: ignore[attr-defined]


class StepDecoded(StepSampled):
    """A :class:`StepSampled` autoencoder whose decoder is the step-sampled network:
    :func:`waveloom.sampling.sample.decode` runs it on a code."""

    def decode_request(self, z: Any, pitch: Any = None, length: int | None = None
                       ) -> tuple[int, int, dict[str, Any]]:
        """A code ``z`` (+ ``pitch``) -> ``(n, length, cond)`` for the engine; ``length``
        defaults to the code's frames times the hop. One-line ConfigErrors for a bad code."""
        raise NotImplementedError

    def decode(self, z: Any, pitch: Any = None, length: int | None = None,
               options: Any = None) -> Tensor:
        """Not here: the engines draw (networks apart from sampling loops)."""
        raise NotImplementedError(
            f"{type(self).__name__} is decoded by the engines: call "
            "waveloom.sampling.sample.decode(model, z, pitch, length, options)")

    def decoded(self, tokens: Tensor) -> Tensor:
        """Engine tokens [n, length] -> what ``decode`` returns (default: :meth:`output`)."""
        return self.output(tokens)


def history_prefix(
    prime: Any, n: int, context: int, device: torch.device | str
) -> tuple[Tensor, int, int]:
    """The engine's history: ``(prefix [n, context] long, prime_length, kept)``.

    ``prime`` ([n, P] or [P] float audio, or None) is quantised and left-padded with silence to
    ``context`` codes, so the network always sees a full, in-distribution receptive field; only
    its last ``kept = min(P, context)`` samples matter. ``prime_length`` is ``P`` (0 without a
    prime): where the output starts on the caller's timeline of local features.
    """
    user_p = 0
    if prime is not None:
        prime = torch.as_tensor(prime, dtype=torch.float32, device=device)
        if prime.dim() == 1:
            prime = prime.unsqueeze(0)
        if prime.dim() != 2 or prime.shape[0] not in (1, n):
            raise ConfigError(
                f"cond['prime'] has shape {tuple(prime.shape)}; expected [{n}, samples]"
            )
        prime = prime.expand(n, -1)
        user_p = prime.shape[-1]
    kept = min(user_p, context)
    silence = torch.full((n, context - kept), int(quantize(torch.zeros(()))), device=device)
    parts = [silence]
    if kept:
        parts.append(quantize(prime[:, user_p - kept :]))
    return torch.cat(parts, dim=1).long(), user_p, kept


def global_vector(
    global_cond: GlobalConditioning | None,
    cond: dict[str, Any],
    n: int,
    device: torch.device | str,
) -> Tensor | None:
    """``cond``'s pitch/instrument labels -> the [n, G] global vector (None if unconditioned).

    Labels are checked first (one-line :class:`ConfigError` for an out-of-range label or a
    count that is neither 1 nor ``n``); a missing label is "unknown" (-1). Label dropout is
    never applied: this is for sampling.
    """
    if global_cond is None:
        return None
    tensors = {
        k: None if cond.get(k) is None else torch.as_tensor(cond[k]).long().reshape(-1)
        for k in ("pitch", "instrument")
    }
    problem = global_cond.check(tensors["pitch"], tensors["instrument"])
    if problem:
        raise ConfigError(f"cond: {problem}")
    for k, v in tensors.items():
        if v is not None and v.numel() not in (1, n):
            raise ConfigError(f"cond[{k!r}] has {v.numel()} values for n={n} samples")
    moved = {k: None if v is None else v.to(device) for k, v in tensors.items()}
    return global_cond(moved["pitch"], moved["instrument"], batch=n, dropout=False)
