"""Count a model's parameters before building it for real: the memory guard's estimate.

``models.registry.build_model`` refuses a model whose training state (weights, gradients,
Adam's moments) would not fit in memory, so ``model.residual_channels=1000000000`` is one line
and not an allocator traceback. That needs the parameter count before the build. Building on
the meta device gave it with no memory, but every op on a meta tensor runs torch's Python
references, whose first use imports sympy (0.3 s) and often torch._dynamo (1-1.5 s) into
every ``generate``'s start-up; and families whose ``__init__`` computes with tensors (a mel
warp's pseudo-inverse) could not be counted at all, so they had no guard.

:func:`count_parameters` builds on the CPU instead, under :func:`counting_build`, a torch
function mode that

* counts the elements every tensor factory asks for and stops the build (:class:`TooLarge`)
  once they pass a limit (a quarter of the free memory by default): nothing larger is ever
  allocated, however large the sizes;
* makes ``empty`` tensors as zeros, and draws ``randn``/``rand``/``randint`` from a private
  generator: the global generator is left as it was, so the real build after it draws the
  weights it would have drawn without the count;
* skips the in-place initialisers (``normal_``, ``kaiming_uniform_``, ...): nothing reads the
  values.
"""

from __future__ import annotations

import math
from typing import Any

#: In-place initialisers (``torch.nn.init.*`` and the ``Tensor`` methods they call).
INITIALISERS = frozenset({
    "normal_", "uniform_", "trunc_normal_", "orthogonal_", "kaiming_uniform_",
    "kaiming_normal_", "xavier_uniform_", "xavier_normal_",
})

#: The factories whose sizes are counted (and made on the CPU).
FACTORIES = ("empty", "zeros", "ones", "full", "randn", "rand", "randint", "arange", "eye",
             "linspace")


class TooLarge(Exception):
    """The build asked for more than the limit: ``elements`` so far (a lower bound)."""

    def __init__(self, elements: int) -> None:
        super().__init__(f"{elements} elements")
        self.elements = elements


def _sizes(args: tuple, kwargs: dict) -> tuple[int, ...]:
    """A factory's sizes given as ints, as one sequence, or as ``size=``."""
    if len(args) == 1 and not isinstance(args[0], int):
        return tuple(int(v) for v in args[0])
    return tuple(int(v) for v in (args or kwargs.get("size", ())))


def factory_elements(name: str, args: tuple, kwargs: dict) -> int:
    """How many elements ``torch.<name>(*args, **kwargs)`` makes (one of :data:`FACTORIES`)."""
    if name == "arange":
        ends = [float(a) for a in args[:3]] or [float(kwargs.get("end", 0))]
        start, end, step = (0.0, ends[0], 1.0) if len(ends) == 1 else (
            ends[0], ends[1], ends[2] if len(ends) == 3 else 1.0)
        return max(0, math.ceil((end - start) / step))
    if name == "eye":
        return int(args[0]) * (int(args[1]) if len(args) > 1 else int(args[0]))
    if name == "linspace":
        return int(args[2] if len(args) > 2 else kwargs["steps"])
    if name == "full":
        return math.prod(_sizes(args[:1], {}))
    if name == "randint":  # randint(high, size) or randint(low, high, size)
        size = kwargs.get("size", args[-1] if args else ())
        return math.prod(_sizes((size,), {}))
    return math.prod(_sizes(args, kwargs))


def counting_build(limit: int) -> Any:
    """The torch function mode described in the module docstring, stopping past ``limit``
    elements (a function making the class: importing torch is left to the first count)."""
    import torch
    from torch.overrides import TorchFunctionMode

    factories = {getattr(torch, name): name for name in FACTORIES}
    private = torch.Generator().manual_seed(0)

    class _Counting(TorchFunctionMode):
        elements = 0

        def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
            kwargs = kwargs or {}
            if getattr(func, "__name__", "") in INITIALISERS:
                return args[0] if args else kwargs.get("tensor")
            name = factories.get(func)
            if name is not None:
                self.elements += factory_elements(name, args, kwargs)
                if self.elements > limit:
                    raise TooLarge(self.elements)
                kwargs = {**kwargs, "device": "cpu"}
                if name == "empty":
                    func = torch.zeros
                elif name.startswith("rand"):
                    kwargs["generator"] = private
            return func(*args, **kwargs)

    return _Counting()


def count_parameters(build: Any, limit: int) -> int | None:
    """Parameters of the model ``build()`` makes, built under :func:`counting_build`; past
    ``limit`` elements, the elements asked for so far (a lower bound, already too many); None
    when the build fails for another reason (then no estimate is made)."""
    from waveloom.errors import ConfigError

    try:
        with counting_build(limit):
            model = build()
    except TooLarge as big:
        return big.elements
    except ConfigError:
        raise
    except Exception:  # noqa: BLE001 (a family whose __init__ the count cannot run)
        return None
    return sum(p.numel() for p in model.parameters())
