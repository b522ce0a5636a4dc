"""Shared-memory segments: processes that attach the same ring together say nothing on the
terminal (Python's resource tracker, shared by a run's processes, once printed a KeyError
traceback for each attach that raced another)."""

import subprocess
import sys
from pathlib import Path

import pytest

from earwig.shm import segments

pytestmark = pytest.mark.pipeline


def test_four_processes_attaching_one_ring_at_once_print_nothing():
    result = subprocess.run([sys.executable, str(Path(__file__).with_name("segment_attachers.py")), "2000"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert not [name for name in segments.existing() if name.endswith("attached")]
