"""Structural checks of src/gridledger that import-linter does not make.

- every module is shorter than 600 lines;
- no import inside a function or class, except an optional dependency marked on
  its line with ``# lazy: <reason>``;
- every module declares its public API in ``__all__`` (a package ``__init__``
  that only carries a docstring is exempt).

    python scripts/check_structure.py      exit 0 when clean, 1 with a list of findings
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "gridledger"
MAX_LINES = 600
LAZY_MARK = "# lazy:"


def _nested_imports(tree: ast.Module) -> list[ast.stmt]:
    found: dict[int, ast.stmt] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom):
                    found[inner.lineno] = inner
    return [found[line] for line in sorted(found)]


def _has_all(tree: ast.Module) -> bool:
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            return True
    return False


def _only_docstring(tree: ast.Module) -> bool:
    body = [
        n for n in tree.body if not (isinstance(n, ast.ImportFrom) and n.module == "__future__")
    ]
    return all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body)


def check(package: Path = PACKAGE) -> list[str]:
    """Findings as ``path:line: message`` strings (empty when the package is clean)."""
    findings: list[str] = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(ROOT)
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        if len(lines) >= MAX_LINES:
            findings.append(f"{rel}:1: {len(lines)} lines (limit {MAX_LINES - 1})")
        tree = ast.parse(text, filename=str(path))
        for node in _nested_imports(tree):
            if LAZY_MARK not in lines[node.lineno - 1]:
                findings.append(
                    f"{rel}:{node.lineno}: import inside a function or class "
                    f"(move it to the top, or mark an optional dependency '{LAZY_MARK} why')"
                )
        if not _has_all(tree) and not (path.name == "__init__.py" and _only_docstring(tree)):
            findings.append(f"{rel}:1: no __all__ (declare the module's public API)")
    return findings


def main() -> int:
    findings = check()
    for finding in findings:
        sys.stderr.write(finding + "\n")
    if findings:
        sys.stderr.write(f"{len(findings)} structural finding(s)\n")
        return 1
    sys.stdout.write("structure OK: module sizes, top-level imports, __all__\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
