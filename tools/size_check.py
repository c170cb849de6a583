"""Functions over 80 lines and modules over 400 lines in engine/, export/ and kernels/.

`python tools/size_check.py` prints each offender and exits 1 when there is one;
tests/test_layers.py runs the same check.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("engine", "export", "kernels")
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 400


def oversized(root: Path = ROOT) -> list[str]:
    found = []
    for folder in FOLDERS:
        for path in sorted((root / folder).rglob("*.py")):
            text = path.read_text()
            rel = path.relative_to(root)
            lines = text.count("\n")
            if lines > MAX_MODULE_LINES:
                found.append(f"{rel}: module of {lines} lines")
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    length = node.end_lineno - node.lineno + 1
                    if length > MAX_FUNCTION_LINES:
                        found.append(f"{rel}:{node.lineno}: {node.name} of {length} lines")
    return found


if __name__ == "__main__":
    problems = oversized()
    print("\n".join(problems) or "sizes ok")
    sys.exit(1 if problems else 0)
