"""Put on PYTHONPATH by the harness so every interpreter it starts (pytest, its xdist workers and
the subprocesses FastAPI's tests spawn) gets the injection of ``SERDES_COMPAT_MODE``."""

import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[2]))  # the repo root, for ``compat``

from compat.patch import install_when_imported

install_when_imported()
