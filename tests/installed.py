"""The programs a test needs: a skip that names the first one missing, and the fix. CI
installs them all (scripts/setup), and with CI set a skip is a failure (conftest.py)."""

from __future__ import annotations

import shutil

import pytest


def require(*programs: str) -> None:
    for program in programs:
        if shutil.which(program) is None:
            pytest.skip(f"{program} is not installed (scripts/setup installs it)")
