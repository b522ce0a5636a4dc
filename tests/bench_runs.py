"""What every benchmark's smoke test does: run ``bench NAME --quick`` and read its table."""

import subprocess
import sys


def quick_run(name: str, timeout: int) -> subprocess.CompletedProcess:
    """``bench NAME --quick``, which must succeed."""
    result = subprocess.run([sys.executable, "-m", "earwig.profiling.bench", name, "--quick"],
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return result


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
