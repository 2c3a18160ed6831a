"""The sampling engines' randomness without torch: ``torch.rand``'s numbers from numpy.

Every engine turns pre-drawn uniforms into codes (:func:`waveloom.models.plan.draw_uniforms`:
``torch.rand(length, n, per_step)`` from a CPU generator seeded with the seed). The start-up
of ``waveloom generate`` on a packed model (:mod:`waveloom.app._generate_packed`) runs without
importing torch (~1.5 s of a 10-s clip's command), so it draws the same numbers here: torch's
CPU generator is MT19937 seeded as ``init_genrand(seed mod 2**32)``, and a float32 uniform is
the low 24 bits of one 32-bit output times 2**-24. numpy's legacy ``RandomState`` is the same
generator with the same seeding, so the streams agree bit for bit (tested against torch for
several seeds, negative ones included, and across pieces).
"""

from __future__ import annotations

import numpy as np

_MANTISSA = np.uint32((1 << 24) - 1)
_SCALE = np.float32(2.0**-24)
_LOW, _HIGH = np.float32(1e-7), np.float32(1.0 - 1e-7)  # the heads' clamp, in float32


class UniformStream:
    """``torch.rand`` of a CPU generator seeded with ``seed`` (None: a fresh random seed),
    drawn piece by piece: consecutive :meth:`draw` calls continue one stream, as consecutive
    ``torch.rand`` calls on one generator do."""

    def __init__(self, seed: int | None) -> None:
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        self._rs = np.random.RandomState(int(seed) & 0xFFFFFFFF)

    def draw(self, *shape: int) -> np.ndarray:
        """The next ``prod(shape)`` uniforms in [0, 1) as float32 ``shape`` (C order)."""
        raw = self._rs.randint(0, 1 << 32, size=shape, dtype=np.uint32)
        return (raw & _MANTISSA).astype(np.float32) * _SCALE


def normal_deviates(u: np.ndarray) -> np.ndarray:
    """Uniforms (float32) -> standard normal deviates ``Phi^-1(u)`` (float32), as a
    discretised Gaussian head's draw reads them, with ``u`` clamped to [1e-7, 1 - 1e-7].

    Computed in float64 by Wichura's algorithm AS 241 (PPND16, relative error ~1e-16) and
    rounded once to float32, so the torch engines and this torch-free path agree to the last
    bit. Written here rather than taken from ``scipy.special.ndtri`` because importing scipy's
    special functions costs ~0.3 s of the ``generate`` command's start-up, a sixth of a
    10-s clip's whole budget at 3x real time.
    """
    p = np.clip(np.asarray(u, np.float32), _LOW, _HIGH).astype(np.float64)
    q = p - 0.5
    out = np.empty_like(p)
    central = np.abs(q) <= 0.425
    if central.any():
        qc = q[central]
        r = 0.180625 - qc * qc
        out[central] = qc * _poly(_A, r) / _poly(_B, r)
    tail = ~central
    if tail.any():
        qt = q[tail]
        r = np.sqrt(-np.log(np.where(qt < 0, p[tail], 1.0 - p[tail])))
        near = r <= 5.0
        val = np.where(near, _poly(_C, r - 1.6) / _poly(_D, r - 1.6),
                       _poly(_E, r - 5.0) / _poly(_F, r - 5.0))
        out[tail] = np.where(qt < 0, -val, val)
    return out.astype(np.float32)


def _poly(coeffs: tuple[float, ...], x: np.ndarray) -> np.ndarray:
    """``coeffs[0] + coeffs[1] x + ...`` by Horner's rule."""
    acc = np.full_like(x, coeffs[-1])
    for c in coeffs[-2::-1]:
        acc = acc * x + c
    return acc


# AS 241's coefficients (Wichura 1988, Applied Statistics 37(3)), lowest power first.
_A = (3.387132872796366608, 133.14166789178437745, 1971.5909503065514427,
      13731.693765509461125, 45921.953931549871457, 67265.770927008700853,
      33430.575583588128105, 2509.0809287301226727)
_B = (1.0, 42.313330701600911252, 687.1870074920579083, 5394.1960214247511077,
      21213.794301586595867, 39307.89580009271061, 28729.085735721942674,
      5226.495278852545925)
_C = (1.42343711074968357734, 4.6303378461565452959, 5.7694972214606914055,
      3.64784832476320460504, 1.27045825245236838258, 0.24178072517745061177,
      0.0227238449892691845833, 7.7454501427834140764e-4)
_D = (1.0, 2.05319162663775882187, 1.6763848301838038494, 0.68976733498510000455,
      0.14810397642748007459, 0.0151986665636164571966, 5.475938084995344946e-4,
      1.05075007164441684324e-9)
_E = (6.6579046435011037772, 5.4637849111641143699, 1.7848265399172913358,
      0.29656057182850489123, 0.026532189526576123093, 0.0012426609473880784386,
      2.71155556874348757815e-5, 2.01033439929228813265e-7)
_F = (1.0, 0.59983220655588793769, 0.13692988092273580531, 0.0148753612908506148525,
      7.868691311456132591e-4, 1.8463183175100546818e-5, 1.4215117583164458887e-7,
      2.04426310338993978564e-15)
