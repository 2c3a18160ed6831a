"""No function in waveloom/ is longer than 80 lines (issue #18): long functions hide branches
that belong in their own, named, tested pieces."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "waveloom"
LIMIT = 80


def long_functions() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                length = node.end_lineno - start + 1
                if length > LIMIT:
                    where = path.relative_to(PACKAGE.parent)
                    found.append(f"{where}:{node.lineno} {node.name} is {length} lines")
    return found


def test_no_function_over_80_lines() -> None:
    assert long_functions() == [], "split these into named helpers:\n" + "\n".join(
        long_functions())
