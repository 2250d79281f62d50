"""``irsolve demo``: cache reuse, report contents and the rows' accuracy, at tiny sizes.

The full ``--quick`` run (about 2 minutes on two cores) is marked slow.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
import torch

from irsolve.cli import main
from irsolve.demo import DemoCache, DemoSettings, run_demo, summary_table

TINY = DemoSettings(
    ns_resolution=16,
    ns_train=16,
    ns_test=4,
    base_epochs=1,
    base_hidden=8,
    irno_epochs=1,
    irno_width=4,
    K=2,
    analyze_samples=2,
    darcy_n=16,
    test_n=16,
    corrector_problems=16,
    corrector_epochs=1,
    corrector_modes=4,
    corrector_width=8,
    test_problems=2,
    max_sweeps=200,
    max_cycles=40,
    amg_sizes=(15,),
)


ROOT = Path(__file__).resolve().parents[2]

#: What ``irsolve demo --quick`` printed (seed 0, one thread) and the README's opening section
#: quotes: percentages are the VRMSE cuts as the demo rounds them, counts are the worst of the
#: problems. A change to the demo that moves them updates both.
QUICK_FIGURES = {
    "base_vrmse": 0.0986,
    "cut_K": 59,
    "cut_2K": 61,
    "cut_one_shot": 65,
    "certificate_holds": 0,
    "analyze_samples": 4,
    "corrector_cycles": 73,
    "fcg_corrector_iterations": 36,
    "jacobi_pcg_iterations": 119,
    "jacobi_sweeps": 4000,
    "jacobi_residual": 8.7e-6,
    "multigrid_cycles": 6,
    "amg_n": 63,
    "amg_problems": 4,
    "amg_iterations": [6, 5, 9],
}


def readme_quick_figures() -> dict:
    """The figures of ``QUICK_FIGURES`` as the README's opening demo section quotes them."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## Two commands on a fresh machine")
    section = " ".join(readme[start : readme.index("It writes `runs/demo/report.md`")].split())

    def number(pattern: str) -> str:
        found = re.search(pattern, section)
        assert found, f"README's demo section does not match {pattern!r}"
        return found.group(1)

    multigrid, fcg, pyamg = (
        int(number(p))
        for p in (r"multigrid (\d+) V-cycles, FCG", r"FCG\(multigrid\) (\d+) iter", r"CG (\d+)\.")
    )
    return {
        "base_vrmse": float(number(r"test VRMSE ([\d.]+) in `--quick`")),
        "cut_K": int(number(r"\*\*(\d+) % at K and")),
        "cut_2K": int(number(r"at K and (\d+) % at 2K\*\* in `--quick`")),
        "cut_one_shot": int(number(r"same size cuts it by (\d+) %")),
        "certificate_holds": int(number(r"certificate holds for (\d+) of \d+ samples")),
        "analyze_samples": int(number(r"certificate holds for \d+ of (\d+) samples")),
        "corrector_cycles": int(number(r"\*\*8 of 8\*\* problems: (\d+) cycles at 32²")),
        "fcg_corrector_iterations": int(number(r"corrector cycle (\d+) iterations")),
        "jacobi_pcg_iterations": int(number(r"Jacobi-PCG (\d+)\)")),
        "jacobi_sweeps": int(number(r"its cap of ([\d,]+) sweeps").replace(",", "")),
        "jacobi_residual": float(number(r"sweeps at a relative residual of ([\d.e-]+) ")),
        "multigrid_cycles": int(number(r"multigrid needs (\d+) V-cycles")),
        "amg_n": int(number(r"problems at (\d+)² in `--quick`")),
        "amg_problems": int(number(r"PyAMG\*\* on (\d+) Darcy problems")),
        "amg_iterations": [multigrid, fcg, pyamg],
    }


def demo_quick_figures(summary: dict) -> dict:
    """The same figures from a ``--quick`` run's ``summary.json``."""
    ns, settings = summary["navier_stokes"], summary["settings"]
    rows = {r["row"]: r for r in summary["hybrid"]["rows"]}
    fcg = next(r for name, r in rows.items() if name.startswith("FCG(corrector"))
    analysis = next(r for r in summary["summary"] if r["method"].startswith("contraction"))
    return {
        "base_vrmse": round(ns["base"], 4),
        "cut_K": round(100 * ns["cut_K"]),
        "cut_2K": round(100 * ns["cut_2K"]),
        "cut_one_shot": round(100 * ns["cut_one_shot"]),
        "certificate_holds": int(re.search(r"holds for (\d+)/", analysis["result"]).group(1)),
        "analyze_samples": settings["analyze_samples"],
        "corrector_cycles": rows["corrector + Jacobi x5"]["iterations"],
        "fcg_corrector_iterations": fcg["iterations"],
        "jacobi_pcg_iterations": rows["Jacobi-PCG"]["iterations"],
        "jacobi_sweeps": rows["Jacobi alone (omega 0.8)"]["iterations"],
        "jacobi_residual": float(f"{rows['Jacobi alone (omega 0.8)']['final_residual']:.1e}"),
        "multigrid_cycles": rows["Multigrid V(2,2)"]["iterations"],
        "amg_n": summary["multigrid"]["rows"][0]["n"],
        "amg_problems": sum(summary["multigrid"]["rows"][0]["retcodes"].values()),
        "amg_iterations": [r["iterations"] for r in summary["multigrid"]["rows"]],
    }


def test_readme_quotes_the_quick_demo_figures():
    assert readme_quick_figures() == QUICK_FIGURES


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_cache_key_changes_with_every_setting_and_not_otherwise():
    assert TINY.key() == dataclasses.replace(TINY).key()
    for field in dataclasses.fields(DemoSettings):
        value = getattr(TINY, field.name)
        changed = value + (1,) if isinstance(value, tuple) else value + 1
        assert dataclasses.replace(TINY, **{field.name: changed}).key() != TINY.key(), field.name


def test_quick_preset_is_smaller_than_the_full_one():
    quick, full = DemoSettings.preset(quick=True), DemoSettings.preset(quick=False)
    assert quick.irno_epochs < full.irno_epochs
    assert quick.corrector_problems < full.corrector_problems
    assert quick.test_n < full.test_n
    assert max(quick.amg_sizes) < max(full.amg_sizes)


def test_cache_entry_that_writes_nothing_is_an_error(tmp_path):
    cache = DemoCache(tmp_path, TINY)
    with pytest.raises(RuntimeError, match="expected broken to write"):
        cache.get("broken", "best.pt", lambda folder: None)
    assert cache.built == []


def test_cache_entry_without_its_completion_marker_is_built_again(tmp_path):
    calls = []

    def make(folder):
        calls.append(folder)
        (folder / "best.pt").write_text("weights")

    cache = DemoCache(tmp_path, TINY)
    cache.get("net", "best.pt", make)
    cache.get("net", "best.pt", make)
    assert len(calls) == 1
    (cache.root / "net" / DemoCache.MARKER).unlink()  # as if killed after the first epoch
    cache.get("net", "best.pt", make)
    assert len(calls) == 2 and cache.built == ["net", "net"]


def test_unknown_part_is_rejected_by_name(tmp_path):
    with pytest.raises(ValueError, match="expected parts among .* got \\('spectra',\\)"):
        run_demo(tmp_path, settings=TINY, cache_dir=tmp_path, parts=("spectra",))


def test_threads_must_be_a_positive_int(tmp_path):
    with pytest.raises(ValueError, match="expected threads to be a positive int or None, got 0"):
        run_demo(tmp_path, settings=TINY, cache_dir=tmp_path, threads=0)


def test_second_run_trains_nothing_and_darcy_rows_match_spsolve(tmp_path):
    parts = ("hybrid", "multigrid")
    kwargs = {"settings": TINY, "cache_dir": tmp_path / "cache", "parts": parts, "threads": 1}
    first = run_demo(tmp_path / "a", **kwargs)
    assert first["built"] == ["corrector"]
    second = run_demo(tmp_path / "b", **kwargs)
    assert second["built"] == []
    # Same cached corrector, same problems: the hybrid rows repeat to rounding.
    for a, b in zip(first["hybrid"]["rows"], second["hybrid"]["rows"], strict=True):
        assert a["iterations"] == b["iterations"], a["row"]

    rows = {r["row"]: r for r in second["hybrid"]["rows"]}
    # Rows that converge to a relative residual of 1e-8: on a 16^2 Darcy problem the
    # condition number is below 1e3, so the error against spsolve is below 1e-5.
    for name in ("Jacobi-PCG", "Multigrid V(2,2)"):
        assert rows[name]["retcodes"] == {"SUCCESS": TINY.test_problems}, name
        assert rows[name]["error_vs_spsolve"] < 1e-5, name
    fcg = next(r for name, r in rows.items() if name.startswith("FCG(corrector"))
    assert fcg["retcodes"] == {"SUCCESS": TINY.test_problems}
    # Jacobi alone is capped: 200 sweeps at 16^2 (factor ~0.99) stay far from 1e-8.
    assert rows["Jacobi alone (omega 0.8)"]["retcodes"] == {"MAX_ITERS": TINY.test_problems}
    for r in second["multigrid"]["rows"]:
        assert r["final_residual"] <= 1e-8 and r["error_vs_spsolve"] < 1e-5, r["row"]

    out = tmp_path / "b"
    assert (out / "hybrid_residuals.png").stat().st_size > 0
    report = (out / "report.md").read_text()
    assert summary_table(second["summary"]) in report
    assert json.loads((out / "summary.json").read_text())["built"] == []


@pytest.mark.slow
def test_all_three_parts_at_tiny_size_write_the_ns_analysis(tmp_path):
    result = run_demo(tmp_path / "out", settings=TINY, cache_dir=tmp_path / "cache")
    assert result["built"] == ["ns_data", "base", "irno", "one_shot", "corrector"]
    assert (tmp_path / "out" / "ns_analysis" / "report.md").exists()
    vrmse = result["navier_stokes"]["evaluation"]["metrics"]["vrmse"]
    assert len(vrmse) == 2 * TINY.K + 1


@pytest.mark.slow
def test_quick_demo_cuts_the_base_error_and_its_corrector_converges(tmp_path, capsys):
    """The README's claims for ``irsolve demo --quick`` (seeded): IRNO cuts the base's test
    VRMSE by 30 % or more at K and no less at 2K; corrector + Jacobi converges on 8 of 8; every
    figure the README quotes is what the run prints."""
    argv = ["demo", "--quick", "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "c")]
    assert main(argv) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    ns = summary["navier_stokes"]
    assert ns["cut_K"] >= 0.30, ns["cut_K"]
    assert ns["cut_2K"] >= ns["cut_K"], (ns["cut_K"], ns["cut_2K"])
    stationary = next(r for r in summary["hybrid"]["rows"] if r["row"].startswith("corrector"))
    assert stationary["retcodes"] == {"SUCCESS": summary["settings"]["test_problems"]}
    # What the README quotes (test_readme_quotes_the_quick_demo_figures), to the demo's rounding.
    assert demo_quick_figures(summary) == QUICK_FIGURES
    assert main(argv) == 0
    assert "trained or simulated: nothing (cache hit)" in capsys.readouterr().out
