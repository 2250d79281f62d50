"""The README's ten-line example is ``examples/quickstart.py``, which CI runs from the wheel."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _code(text: str) -> str:
    """``text`` as Python without its module docstring, normalised by ``ast``."""
    tree = ast.parse(text)
    body = tree.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return ast.unparse(ast.Module(body=body, type_ignores=[]))


def test_the_readme_example_is_the_quickstart_script_that_ci_runs():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## `solve` in ten lines\s+```python\n(.*?)```", readme, re.DOTALL)
    assert block is not None, "README.md has no '## `solve` in ten lines' python block"
    quickstart = (ROOT / "examples" / "quickstart.py").read_text()
    assert _code(block[1]) == _code(quickstart)
    assert "examples/quickstart.py" in (ROOT / ".ci" / "run").read_text()
