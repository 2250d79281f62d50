"""No library function is longer than :data:`MAX_LINES` lines of code.

A line of code is a line of the function's body that holds a token other than
a comment (blank and comment-only lines do not count, nor does the docstring;
every line of a multi-line string or call does). Nested functions count inside
the function that holds them.
"""

from __future__ import annotations

import ast
import io
import textwrap
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("irsolve", "solvers", "analysis")
MAX_LINES = 80

#: Tokens that make no line a line of code on their own.
LAYOUT = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}


def code_line_numbers(source: str) -> set[int]:
    """Numbers of the lines of ``source`` that hold a token other than a comment."""
    lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in LAYOUT and token.type != tokenize.ENDMARKER:
            lines.update(range(token.start[0], token.end[0] + 1))
    return lines


def _docstring_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> set[int]:
    first = node.body[0]
    is_docstring = (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    )
    return set(range(first.lineno, first.end_lineno + 1)) if is_docstring else set()


def function_lengths(source: str) -> dict[str, int]:
    """``"name (line N)" -> lines of code of its body`` for every function of ``source``."""
    code = code_line_numbers(source)
    lengths = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            body = set(range(node.body[0].lineno, node.end_lineno + 1))
            lengths[f"{node.name} (line {node.lineno})"] = len(
                (body & code) - _docstring_lines(node)
            )
    return lengths


def test_counts_code_lines_without_docstring_comments_or_blank_lines():
    source = textwrap.dedent(
        '''
        def outer(a):
            """Docstring,

            two paragraphs."""
            # a comment

            b = (a +  # trailing comment
                 1)
            text = """a string
        # not a comment
            """

            def inner():
                return b

            return inner, text
        '''
    )
    lengths = function_lengths(source)
    # b = (...) 2, text 3, def inner 1, return b 1, return inner 1
    assert lengths == {"outer (line 2)": 8, "inner (line 14)": 1}


@pytest.mark.parametrize("package", PACKAGES)
def test_no_function_of_the_package_exceeds_the_line_limit(package):
    too_long = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for name, length in function_lengths(path.read_text()).items():
            if length > MAX_LINES:
                too_long.append(f"{path.relative_to(ROOT)}: {name} has {length} lines of code")
    assert not too_long, f"over {MAX_LINES} lines of code:\n" + "\n".join(too_long)
