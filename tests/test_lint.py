"""``ruff check`` passes on the whole project (the rules are in pyproject.toml's [tool.ruff])."""

from __future__ import annotations

import subprocess
import sys

from .helpers import ROOT


def test_ruff_check_passes():
    done = subprocess.run([sys.executable, "-m", "ruff", "check", str(ROOT)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
