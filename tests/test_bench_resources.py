"""What running costs and what it holds: throughput, memory, recovery and the long soak,
each smoke run beside its baseline."""

import re

import pytest
from bench_runs import quick_run, cells_by_row

pytestmark = pytest.mark.bench


def test_ring_benchmark_prints_ratios_against_the_queue():
    result = quick_run("ring")
    rows = {line.split("  ")[0].strip(): line for line in result.stdout.splitlines()}
    assert "x" in rows["throughput (blocks/s)"].split()[-3]
    for label in ("hop p50 @ 5,000 blocks/s (ms)", "hop p99 @ 100 blocks/s (ms)"):
        assert "faster" in rows[label]


def test_mel_benchmark_prints_ratios_against_the_naive_window():
    result = quick_run("mel")
    lines = result.stdout.splitlines()
    incremental = next(line for line in lines if line.startswith("incremental, 100 ms blocks (the"))
    assert "x less" in incremental
    live = next(line for line in lines if line.startswith("mel "))
    assert live.split()[1].replace(".", "").isdigit()


def test_session_log_benchmark_prints_the_fsyncs_cost_against_plain_writes():
    result = quick_run("session_log")
    rows = cells_by_row(result.stdout)
    synced = rows["SessionLog.append (write + fsync)"]
    plain = rows["the same lines, write only (baseline)"]
    assert float(synced[-3]) > 0 and float(plain[-3]) > 0  # p50 of each, printed
    calls, appends = re.search(r"fsync calls: (\d+) for (\d+) appends", result.stdout).groups()
    assert int(calls) == int(appends) > 0  # every append was fsync'd: counted, not inferred from its time


def test_recovery_benchmark_times_every_actor_back_after_a_kill_against_its_cold_start():
    result = quick_run("recovery")
    rows = cells_by_row(result.stdout)
    for actor in ("capture-mic", "mel", "preview", "final"):
        cold, back, worst, working = (float(cell) for cell in rows[actor][1:5])
        assert cold > 0 and 0 < back <= worst and back <= working
    assert rows["mel"][5].endswith("x") and rows["mel"][-3:] == ["<", "0.5", "s"]  # the goal beside it
    for model_actor in ("preview", "final"):
        assert float(rows[model_actor][5]) > 0 and rows[model_actor][6].endswith("x")  # the reload, apart


def test_model_memory_benchmark_prints_each_way_against_neither():
    result = quick_run("model_memory")
    rows = cells_by_row(result.stdout)
    ways = [label for label in rows if "heap" in label]
    assert len(ways) == 4 and rows[ways[0]][-2] == "1.00x"
    for way in ways:
        early, last, growth, percent, pass_s, ratio, _ = rows[way][-7:]
        assert float(early) > 0 and float(last) > 0 and percent == "%"
        assert float(growth) == pytest.approx(100 * (float(last) - float(early)) / float(early), abs=0.5)
        assert float(pass_s) > 0 and ratio.endswith("x")


def test_soak_benchmark_keeps_the_screen_bounded_and_every_final_in_the_session_log():
    """The soak's smoke run (a minute of real speech per source, as fast as the pipeline
    takes it): the same widgets throughout, no column over its bound though more Finals came,
    every Final in the session log, nothing lost; RSS growth is reported (its goal is for the
    hour-long run, not a smoke run)."""
    result = quick_run("soak")
    rows = cells_by_row(result.stdout)
    fewest, most = rows["widgets on screen, fewest..most"][-2].split("..")
    assert fewest == most
    bound = int(rows["most Finals in a column"][-1])
    assert 0 < int(rows["most Finals in a column"][-3]) <= bound
    shown = rows["Finals shown, mic / speakers"]
    assert int(shown[-8]) > bound and int(shown[-6]) > bound, shown  # both columns crossed it
    logged = rows["Finals in the session log / shown"]
    assert int(logged[-4]) == int(logged[-2]) > 0
    assert rows["audio lost (overruns, overflows)"][-2] == "0"
    wer = rows["kept text WER, mic / speakers"]
    assert float(wer[-7]) < 0.4 and float(wer[-5]) < 0.4, wer  # neither source's text was lost
    for process in ("monitor", "supervisor", "mel", "preview", "final"):  # a signed figure for each
        assert rows[f"RSS growth {process}, first row -> end"][-5][0] in "+-"
