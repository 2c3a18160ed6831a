"""Imports point down the layers (issue #18): a module never imports one from a layer above it.

Every ``import``/``from ... import`` in ``waveloom/**/*.py`` is checked, including the lazy
ones inside functions: a lazy import is still a dependency, it only hides it until run time.
The layers, low to high::

    config, checkpoint, device, errors, lazy  generic
    web
    audio                                signal I/O, mu-law, spectral, plots
    nn, data                             shared layers | sources, synth, cache, datasets
    models                               one file per family, registry, loading
    sampling                             engines apart from networks, hierarchy
    train, evaluate, listening           (listening may not import train)
    app (and the verb modules), studio   one module per verb group; the studio drives them
    cli                                  the thin loop over app modules

Imports within one layer are allowed (a package's modules, nn <-> data, train <-> evaluate).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "waveloom"

# First name under ``waveloom`` (a subpackage or a top-level module) -> its layer.
LAYERS: dict[str, int] = {
    "": 0,  # waveloom/__init__.py (the version)
    "config": 0, "checkpoint": 0, "device": 0, "errors": 0, "memory": 0, "web": 0,
    "shipped": 0, "lazy": 0, "native": 0,
    "audio": 1,
    "nn": 2, "data": 2,
    "models": 3,
    "sampling": 4,
    "train": 5, "evaluate": 5, "listening": 5, "zoo": 5,
    "app": 6, "studio": 6,
    # The verb modules, until they move into app/.
    "generate": 6, "autoencode": 6, "vocode": 6, "encode_codes": 6, "demo": 6,
    "cli": 7,
}

# Pairs of one layer that must still not meet: (importer's first name, imported first name).
FORBIDDEN = {("listening", "train")}

# Exceptions to the layer order, each with its reason (none today; keep it that way).
ALLOWED: set[tuple[str, str]] = set()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """The waveloom modules an import node names (relative imports resolved)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "waveloom"]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        anchor = module.split(".")[: len(module.split(".")) - node.level + is_package]
        base = ".".join(anchor + ([base] if base else []))
    if base.split(".")[0] != "waveloom":
        return []
    if base == "waveloom":  # from waveloom import errors / __version__
        found = []
        for alias in node.names:
            sub = PACKAGE / alias.name
            is_module = sub.is_dir() or sub.with_suffix(".py").is_file()
            found.append(f"waveloom.{alias.name}" if is_module else "waveloom")
        return found
    return [base]


def _layer(first: str) -> str:
    """How a message names a layer: its package, or 'generic' / 'app' for the modules."""
    if LAYERS[first] == 0:
        return "generic"
    return "app" if LAYERS[first] == LAYERS["app"] else first


def _first(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def upward_imports() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        where = path.relative_to(PACKAGE.parent).as_posix()
        own = _first(module)
        if own not in LAYERS:
            found.append(f"{where}: {own!r} has no layer; add it to LAYERS in this test")
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            for target in _imported(node, module, path.name == "__init__.py"):
                other = _first(target)
                if other not in LAYERS:
                    found.append(f"{where} imports {target} ({other!r} has no layer)")
                    continue
                if (where, target) in ALLOWED:
                    continue
                if LAYERS[other] > LAYERS[own]:
                    found.append(f"{where}:{node.lineno} imports {target} (layer "
                                 f"{_layer(own)} imports layer {_layer(other)} above it)")
                elif (own, other) in FORBIDDEN:
                    found.append(f"{where}:{node.lineno} imports {target} ({own} may not "
                                 f"import {other})")
    return found


def test_imports_point_down_the_layers() -> None:
    problems = upward_imports()
    assert problems == [], "upward imports:\n" + "\n".join(problems)


def test_the_allow_list_is_still_needed() -> None:
    """An exception nobody uses any more must go (so the list only ever shrinks)."""
    used = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        where = path.relative_to(PACKAGE.parent).as_posix()
        module = _module_name(path)
        for node in ast.walk(ast.parse(path.read_text())):
            used.update((where, t) for t in _imported(node, module, path.name == "__init__.py"))
    assert ALLOWED <= used, f"drop from ALLOWED: {sorted(ALLOWED - used)}"


def test_the_check_sees_lazy_and_relative_imports() -> None:
    """The walker finds imports inside functions and resolves relative ones."""
    tree = ast.parse("def f():\n    from waveloom.sampling import sample\n"
                     "from ..sampling import engine\nfrom . import base\n")
    nodes = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    names = [t for n in nodes for t in _imported(n, "waveloom.models.wavenet", False)]
    assert sorted(names) == ["waveloom.models", "waveloom.sampling", "waveloom.sampling"]
