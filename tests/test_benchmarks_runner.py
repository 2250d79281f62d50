"""``python -m benchmarks``: every ``bench_*.py`` is found with the flags its source declares."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _runner(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_list_names_every_bench_script_with_its_declared_flags():
    done = _runner("--list")
    assert done.returncode == 0, done.stderr
    listed = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines()}
    scripts = {p.stem.removeprefix("bench_") for p in (ROOT / "benchmarks").glob("bench_*.py")}
    assert set(listed) == scripts
    for name in listed:
        source = (ROOT / "benchmarks" / f"bench_{name}.py").read_text()
        assert ("--quick" in listed[name]) == ('"--quick"' in source), name
        assert ("--json" in listed[name]) == ('"--json"' in source), name


def test_unknown_bench_name_is_a_usage_error_naming_it():
    done = _runner("--only", "no_such_bench")
    assert done.returncode == 2
    assert "got unknown ['no_such_bench']" in done.stderr
