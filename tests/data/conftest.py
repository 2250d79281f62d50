"""Data tests run torch on one thread.

Their FFTs are tiny (16² to 32²): with two intra-op threads on a busy
two-core machine, thread hand-offs cost 10 to 100 times the arithmetic
(measured: a 16² Taylor–Green run took 0.05 s on one thread, 1 to 8 s on two).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
