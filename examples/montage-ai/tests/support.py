"""Test support: makes ``src/`` importable without installing the package.

Every test module imports this first, so both ``python3 -m pytest -q`` and
``python3 -m unittest discover -s tests`` work from a fresh checkout.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"

if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))
