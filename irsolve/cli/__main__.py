"""``python -m irsolve.cli ...`` runs the ``irsolve`` command (also under ``torchrun -m``)."""

import sys

from irsolve.cli import main

sys.exit(main())
