"""Package names loaded on first use (PEP 562), so importing a package does not import all of
its modules: ``waveloom.sampling`` does not load numba or the CUDA-graph code, and
``waveloom.audio`` does not load torch (``waveloom generate`` on a packed model runs without
it)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, where: dict[str, str], namespace: dict[str, Any]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package`` whose public names ``where`` maps to
    the submodule defining each; a loaded name is kept in ``namespace`` (the package's
    globals), so the next access is a plain lookup."""

    def getattr_(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{where[name]}"), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted(set(namespace) | set(where))

    return getattr_, dir_
