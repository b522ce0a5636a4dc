"""The kept text against other systems and other passes: the WER benchmarks' smoke runs."""

import pytest
from bench_runs import quick_run, cells_by_row

pytestmark = pytest.mark.bench


def test_peers_benchmark_prints_every_system_on_the_same_speech():
    result = quick_run("peers")
    rows = cells_by_row(result.stdout)
    systems = ("earwig (preview tiny.en, final base)", "(a) openai-whisper transcribe()", "(b) faster-whisper",
               "(c) whisperlivekit LocalAgreement-2 on faster-whisper")
    for system in systems:  # every peer ran (none "not installed"): end -> final p50, WER, CPU
        cells = rows[system]
        assert float(cells[-4]) > 0 and 0 <= float(cells[-2]) < 0.5 and float(cells[-1]) > 0, cells
    for streaming in (systems[0], systems[3]):  # a first partial: raced by the final on a busy machine
        assert rows[streaming][-6] == "-" or float(rows[streaming][-6]) > 0
    for batch in (systems[1], systems[2]):
        assert rows[batch][-6] == "-"  # none: not streaming
    assert "earwig end -> final p50 / best peer's" in result.stdout and result.stdout.rstrip().endswith("x")


def test_wer_benchmark_prints_every_system_against_transcribe_on_real_speech():
    """Its smoke run, with one degraded copy made in the run (a reverberant room): every
    system read the recordings and the copies (live: the recordings alone, in a smoke run),
    and each copy's word errors are split by cause (shares of the reference's words, which
    add up to the deletions)."""
    result = quick_run("wer", "--degrade", "room")
    corpus, subset, per_file, degraded, errors = (cells_by_row(table) for table in result.stdout.split("\n\n")[:5])
    for system in ("earwig file mode (greedy)", "openai-whisper transcribe()", "faster-whisper (beam 5)"):
        cells = corpus[system]  # corpus WER, its ratio, wall s, its ratio
        assert 0 <= float(cells[-4]) < 0.5 and cells[-3].endswith("x") and float(cells[-2]) > 0, cells
        assert 0 <= float(degraded[system][-2]) < 0.6 and degraded[system][-1].endswith("x"), degraded[system]
    live = subset["earwig live (real-time replay)"]  # the live subset's WER, its ratio
    assert 0 <= float(live[-2]) < 0.5 and live[-1].endswith("x"), live
    assert len(per_file["vctk_p225_002_mic1.flac"]) == 6  # name, seconds, a WER per system
    room = errors["room: earwig file mode"]  # sub, del, ins, then the deletions by cause
    assert float(room[-7]) == pytest.approx(sum(float(c) for c in room[-4:]), abs=0.002), room
    assert errors["room: openai-whisper transcribe()"][-4:] == ["-"] * 4


def test_retry_benchmark_prints_work_per_second_and_wer_against_the_live_pass():
    """Its smoke run: two lines, each pair of models (cells counted from the right: a pass's
    label has spaces, and the live rows have no WER difference)."""
    rows = cells_by_row(quick_run("retry").stdout)
    for live in ("base", "tiny.en"):
        said, again = rows[f"live {live} greedy"], rows[f"retry of {live} by base beam 5"]
        assert float(said[-3]) > 0 and said[-2] == "1.00x" and 0 <= float(said[-1]) < 0.5, rows
        assert float(again[-4]) > 0 and again[-3].endswith("x") and 0 <= float(again[-2]) < 0.5, rows
        assert again[-1][0] in "+-", rows
