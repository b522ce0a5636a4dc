"""What every benchmark's smoke test does: run ``bench NAME --quick`` and read its table."""

import signal
import subprocess
import sys

import pytest

#: A smoke run still going after this long is stuck (the slowest takes 80 s alone, 3 minutes
#: on a machine kept busy): it is stopped before pytest's own limit (300 s), which would only
#: say that the test waited, and the failure shows what each of its threads was doing.
STUCK_S = 270


def quick_run(name: str, *options: str) -> subprocess.CompletedProcess:
    """``bench NAME --quick [OPTIONS]``, which must succeed."""
    argv = [sys.executable, "-X", "faulthandler", "-m", "earwig.profiling.bench", name, "--quick", *options]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = process.communicate(timeout=STUCK_S)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack, then it ends
        out, err = process.communicate()
        pytest.fail(f"bench {name} --quick was still running after {STUCK_S} s; where it was:\n{err[-8000:]}")
    assert process.returncode == 0, err
    return subprocess.CompletedProcess(argv, process.returncode, out, err)


def cells_by_row(table: str) -> dict[str, list[str]]:
    """A printed table's rows by their label (the text before the first double space),
    each as its whitespace-separated cells."""
    return {line.split("  ")[0].strip(): line.split() for line in table.splitlines()}


def is_figure(cell: str) -> bool:
    """A printed number, or "-" for one the run had nothing to measure with."""
    try:
        return cell == "-" or float(cell) == float(cell)
    except ValueError:
        return False
