"""The demo's sizes (:class:`DemoSettings`) and its cache of data and trained nets."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import irsolve

__all__ = ["DemoCache", "DemoSettings", "default_cache_dir"]

logger = logging.getLogger(__name__)


#: Raised when what the cache holds changes shape within one version (2: corrector
#: checkpoints name their family; 3: checkpoints carry their own checksum and training
#: reads the data in an epoch-seeded order), so an older cache is not read as a newer one.
CACHE_LAYOUT = 3


@dataclasses.dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo; :meth:`preset` gives the full and the ``--quick`` ones.

    The Navier–Stokes recipe is ``benchmarks/bench_irno.py --preset long-step``
    at demo size: ``x = w_0``, ``y = w_{ns_dt}`` (vorticity at ``nu = 1e-4``),
    a small FNO base keeping ``base_modes`` Fourier modes (its error is then
    about 10 %, near the paper's bases), the refinement U-Net on top; the
    search behind the numbers is ``benchmarks/bench_demo_recipe.py``.

    Attributes
    ----------
    ns_resolution, ns_train, ns_test, ns_dt
        Navier–Stokes grid, training and test trajectories (one ``(w_0, w_dt)``
        pair each; ``ns_test // 2`` more validate) and the time ``dt`` predicted.
    base_epochs, base_modes, base_hidden
        The FNO base (``n_modes = (base_modes, base_modes)``).
    irno_epochs, irno_width, irno_lr, irno_beta_fp, K
        The refinement U-Net (depth 4, ``irno_width`` base channels), its
        epochs, learning rate and fixed-point loss weight (0.2: with 0.05 the
        error drifted 1 % up from K to 2K), its trained horizon; evaluated to ``2K``.
        The one-shot FNO + U-Net of the same size trains as long.
    batch_size
        Batch of the base and of both refinement nets.
    analyze_samples
        Test samples of the analysis report (certificate, spectra, figures).
    darcy_n, corrector_problems, corrector_epochs, corrector_modes, corrector_width
        The corrector's training grid and data, and its FNO.
    test_n
        Grid of the held-out Darcy problems the rows solve (the corrector
        trained on ``darcy_n`` applies to any grid).
    test_problems, max_sweeps, max_cycles
        Held-out Darcy problems per row, the cap on Jacobi sweeps alone and on
        cycles of the stationary hybrid (corrector then ``nu`` sweeps).
    amg_sizes
        Grids of the multigrid-versus-PyAMG table (``2^k - 1``).
    seed
        Seed of every simulation and initialisation.
    """

    ns_resolution: int = 16
    ns_train: int = 640
    ns_test: int = 64
    ns_dt: float = 1.0
    base_epochs: int = 10
    base_modes: int = 2
    base_hidden: int = 32
    irno_epochs: int = 6
    irno_width: int = 8
    irno_lr: float = 2e-3
    irno_beta_fp: float = 0.2
    K: int = 4
    batch_size: int = 8
    analyze_samples: int = 8
    darcy_n: int = 32
    corrector_problems: int = 256
    corrector_epochs: int = 20
    corrector_modes: int = 16
    corrector_width: int = 32
    test_n: int = 64
    test_problems: int = 8
    max_sweeps: int = 10000
    max_cycles: int = 300
    amg_sizes: tuple[int, ...] = (127, 255)
    seed: int = 0

    @classmethod
    def preset(cls, quick: bool = False) -> DemoSettings:
        """The full demo or the ``quick`` one (measured times: the README)."""
        if not quick:
            return cls()
        return cls(
            ns_train=512,
            irno_epochs=4,
            analyze_samples=4,
            corrector_problems=128,
            corrector_epochs=16,
            corrector_modes=12,
            corrector_width=24,
            test_n=32,
            max_sweeps=4000,
            max_cycles=400,
            amg_sizes=(63,),
        )

    def key(self) -> str:
        """Cache key: a hash of every setting, the irsolve version and :data:`CACHE_LAYOUT`."""
        identity = [dataclasses.asdict(self), irsolve.__version__, CACHE_LAYOUT]
        text = json.dumps(identity, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def default_cache_dir() -> Path:
    """``$IRSOLVE_CACHE/demo`` if set, else ``~/.cache/irsolve/demo``."""
    root = os.environ.get("IRSOLVE_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "irsolve") / "demo"


class DemoCache:
    """Folder of trained nets and simulated data for one :class:`DemoSettings`.

    ``built`` lists what this instance had to make (empty on a cache hit).
    """

    #: Written into an entry's folder once ``make`` has returned: an interrupted run (a
    #: training killed after its first epoch's checkpoint) is built again, not reused.
    MARKER = "complete.json"

    def __init__(self, root: str | os.PathLike[str], settings: DemoSettings) -> None:
        self.root = Path(root) / settings.key()
        self.settings = settings
        self.built: list[str] = []

    def get(self, name: str, path: str, make: Callable[[Path], Any]) -> Path:
        """``root/name/path``, made by ``make(root/name)`` first unless a complete one exists."""
        folder = self.root / name
        target = folder / path
        if not (target.exists() and (folder / self.MARKER).exists()):
            logger.info("cache miss: building %s in %s", name, folder)
            folder.mkdir(parents=True, exist_ok=True)
            (self.root / "settings.json").write_text(
                json.dumps(dataclasses.asdict(self.settings), indent=2) + "\n"
            )
            tic = time.perf_counter()
            make(folder)
            wall = time.perf_counter() - tic
            if not target.exists():
                raise RuntimeError(f"expected {name} to write {target}, got nothing there")
            marker = {"key": self.settings.key(), "wall_s": wall}
            (folder / self.MARKER).write_text(json.dumps(marker) + "\n")
            self.built.append(name)
        return target

    def wall_s(self, name: str) -> float | None:
        """Seconds the run that built entry ``name`` took to make it (``None`` if unknown)."""
        marker = self.root / name / self.MARKER
        if not marker.exists():
            return None
        return json.loads(marker.read_text()).get("wall_s")
