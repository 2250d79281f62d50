"""Run every ``benchmarks/bench_*.py`` and collect the results: ``python -m benchmarks``.

Each bench runs in its own process (``python benchmarks/bench_NAME.py``), one
after the other so that timings do not compete. A bench whose source
declares ``--quick`` gets it when the runner is given ``--quick``; one that
declares ``--json`` writes its own ``benchmarks/results/NAME.json``; for the
others that file holds the captured output (command, exit status, wall time,
stdout). Every bench's stdout also goes to ``results/NAME.log``. Benches
with ``gpu`` in their name are skipped when no CUDA device is present.
``results/SUMMARY.md`` gets one row per bench and the last lines of each
output, where benches print their figures and their ratios against a peer.

Run (from the repository root): ``python -m benchmarks --quick`` (CI-sized
where a bench supports it), ``python -m benchmarks --only multigrid krylov``,
``python -m benchmarks --list``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

logger = logging.getLogger("benchmarks")

HERE = Path(__file__).resolve().parent
#: Lines of each bench's stdout quoted in SUMMARY.md.
TAIL_LINES = 25


@dataclass
class Bench:
    """One ``bench_NAME.py`` script and the flags its source declares."""

    name: str
    path: Path
    quick: bool
    json: bool
    gpu: bool

    @classmethod
    def read(cls, path: Path) -> Bench:
        source = path.read_text()
        name = path.stem.removeprefix("bench_")
        return cls(
            name=name,
            path=path,
            quick=re.search(r"[\"']--quick[\"']", source) is not None,
            json=re.search(r"[\"']--json[\"']", source) is not None,
            gpu="gpu" in name,
        )


@dataclass
class Outcome:
    """What one bench did: ``status`` is ``ok``, ``failed``, ``timeout`` or ``skipped``."""

    name: str
    status: str
    command: list[str] = field(default_factory=list)
    returncode: int | None = None
    wall_s: float | None = None
    reason: str = ""
    stdout: str = ""


def discover(folder: Path = HERE) -> list[Bench]:
    """Every ``bench_*.py`` in ``folder``, sorted by name."""
    return [Bench.read(p) for p in sorted(folder.glob("bench_*.py"))]


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def run_bench(bench: Bench, results: Path, *, quick: bool, timeout: float | None) -> Outcome:
    """Run one bench and write ``results/NAME.log`` and ``results/NAME.json``."""
    json_path = results / f"{bench.name}.json"
    command = [sys.executable, str(bench.path)]
    if quick and bench.quick:
        command.append("--quick")
    if bench.json:
        json_path.unlink(missing_ok=True)
        command += ["--json", str(json_path)]
    logger.info("running %s", " ".join(command))
    tic = time.perf_counter()
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=HERE.parent,
            check=False,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},  # keep a killed bench's output
        )
        status = "ok" if done.returncode == 0 else "failed"
        stdout, stderr, code = done.stdout, done.stderr, done.returncode
    except subprocess.TimeoutExpired as err:
        status, code = "timeout", None
        stdout = err.stdout.decode() if isinstance(err.stdout, bytes) else err.stdout or ""
        stderr = err.stderr.decode() if isinstance(err.stderr, bytes) else err.stderr or ""
    outcome = Outcome(bench.name, status, command, code, time.perf_counter() - tic, stdout=stdout)
    if status != "ok":
        outcome.reason = "\n".join(stderr.strip().splitlines()[-5:])
    (results / f"{bench.name}.log").write_text(
        stdout + ("\n--- stderr ---\n" + stderr if stderr else "")
    )
    if not (bench.json and status == "ok" and json_path.exists()):
        json_path.write_text(json.dumps(asdict(outcome), indent=2, default=str) + "\n")
    return outcome


def summary(outcomes: list[Outcome], quick: bool) -> str:
    """``SUMMARY.md``: one row per bench, then the tail of each output."""
    lines = [
        "# Benchmarks",
        "",
        f"`python -m benchmarks{' --quick' if quick else ''}` on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, Python "
        f"{sys.version.split()[0]}. Figures and their peer ratios are each bench's own "
        "output (quoted below; full output in `NAME.log`, data in `NAME.json`).",
        "",
        "| bench | status | wall s | command |",
        "| --- | --- | ---: | --- |",
    ]
    for o in outcomes:
        wall = "" if o.wall_s is None else f"{o.wall_s:.1f}"
        shown = o.reason
        if o.command:
            script = Path(o.command[1]).relative_to(HERE.parent).as_posix()
            shown = "`" + " ".join(["python", script, *o.command[2:]]) + "`"
        lines.append(f"| {o.name} | {o.status} | {wall} | {shown} |")
    for o in outcomes:
        if o.status == "skipped":
            continue
        tail = "\n".join(o.stdout.rstrip().splitlines()[-TAIL_LINES:])
        lines += ["", f"## {o.name} ({o.status})", "", "```", tail, "```"]
        if o.reason:
            lines += ["", "stderr (last lines):", "", "```", o.reason, "```"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="pass --quick where supported")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these (bench_NAME)")
    parser.add_argument("--skip", nargs="+", default=[], metavar="NAME", help="leave these out")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per bench")
    parser.add_argument(
        "--results", type=Path, default=HERE / "results", help="output folder (benchmarks/results)"
    )
    parser.add_argument("--list", action="store_true", help="list the benches and their flags")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")

    benches = discover()
    known = {b.name for b in benches}
    unknown = sorted((set(args.only or []) | set(args.skip)) - known)
    if unknown:
        parser.error(f"expected bench names among {sorted(known)}, got unknown {unknown}")
    if args.list:
        for b in benches:
            flags = [
                f for f, on in (("--quick", b.quick), ("--json", b.json), ("gpu", b.gpu)) if on
            ]
            print(f"{b.name:22s} {' '.join(flags)}")
        return 0
    selected = [
        b for b in benches if (args.only is None or b.name in args.only) and b.name not in args.skip
    ]
    args.results.mkdir(parents=True, exist_ok=True)
    cuda = _cuda_available()
    outcomes = []
    for bench in selected:
        if bench.gpu and not cuda:
            outcomes.append(Outcome(bench.name, "skipped", reason="no CUDA device"))
            logger.info("skipped %s: no CUDA device", bench.name)
            continue
        outcome = run_bench(bench, args.results, quick=args.quick, timeout=args.timeout)
        logger.info("%s: %s in %.1f s", bench.name, outcome.status, outcome.wall_s)
        outcomes.append(outcome)
    (args.results / "SUMMARY.md").write_text(summary(outcomes, args.quick))
    print(f"wrote {args.results / 'SUMMARY.md'}")
    return 0 if all(o.status in ("ok", "skipped") for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
