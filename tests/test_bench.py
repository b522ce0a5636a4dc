"""The benchmarks keep working: a quick run prints every figure beside its baseline."""

import subprocess
import sys


def test_ring_benchmark_prints_ratios_against_the_queue():
    result = subprocess.run([sys.executable, "-m", "earwig.profiling.bench", "ring", "--quick"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = {line.split("  ")[0].strip(): line for line in result.stdout.splitlines()}
    assert "x" in rows["throughput (blocks/s)"].split()[-3]
    for label in ("hop p50 @ 5,000 blocks/s (ms)", "hop p99 @ 100 blocks/s (ms)"):
        assert "faster" in rows[label]


def test_mel_benchmark_prints_ratios_against_the_naive_window():
    result = subprocess.run([sys.executable, "-m", "earwig.profiling.bench", "mel", "--quick"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    incremental = next(line for line in lines if line.startswith("incremental, 100 ms blocks (the"))
    assert "x less" in incremental
    live = next(line for line in lines if line.startswith("mel "))
    assert live.split()[1].replace(".", "").isdigit()
