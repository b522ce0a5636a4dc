"""How fast text and sound reach the user: the latency benchmarks' smoke runs, each
printing its figures beside its baseline."""

import pytest
from bench_runs import quick_run, cells_by_row, is_figure

pytestmark = pytest.mark.bench


def test_latency_benchmark_prints_both_latencies_against_whisper_transcribe():
    result = quick_run("latency")
    rows = {line.strip().split("  ")[0]: line.split() for line in result.stdout.splitlines()}
    onset, end = rows["(a) onset -> first Partial"], rows["(b) end of speech -> Final, vs transcribe() alone"]
    piped, vad = rows["vs SpeechEnd, then transcribe()"], rows["of which: end of speech -> SpeechEnd (VAD)"]
    # A first Partial races the Final (the preview is best-effort): its figure, or "-" when
    # no timed utterance had one, is the report's; the Final's is always there.
    assert (onset[5] == "-" or float(onset[5]) > 0) and float(end[9]) > 0  # p50 of each
    assert end[-3].endswith("x") and piped[-3].endswith("x")  # ratios to baselines of the same run
    assert float(piped[-4]) > float(end[11]) > 0  # that pipeline waits for the VAD, then transcribes
    assert 0 < float(vad[8]) < float(piped[-4])
    for stage in ("before load", "after load", "after eviction"):
        assert rows[stage][-1].isdigit()


def test_monitor_benchmark_prints_the_screens_cpu_and_latency_on_against_off():
    result = quick_run("monitor")
    rows = cells_by_row(result.stdout)
    cpu = rows["client process CPU, % of one core"]
    on, off, screen = float(cpu[-5]), float(cpu[-4]), float(cpu[-3])
    assert on > 0 and off > 0 and abs(screen - (on - off)) < 0.15  # the screen's share: the figure is the report's
    finals = rows["Finals timed"]
    assert int(finals[-2]) == int(finals[-1]) > 0  # both modes timed the same Finals
    assert rows["end of speech -> Final p50 s"][-3].endswith("x")


def test_dictation_benchmark_prints_release_to_typed_against_transcribe():
    result = quick_run("dictation")
    rows = cells_by_row(result.stdout)
    ours = rows["earwig: key release -> last character typed"]
    theirs = rows["baseline: transcribe() from the release"]
    assert 0 < float(ours[-6]) <= float(ours[-5]) and 0 < float(theirs[-4]) <= float(theirs[-3])
    assert float(ours[-4]) <= 0.2  # what was typed is what was said
    assert ours[-3].endswith("x")  # a ratio to the baseline of the same run
    wayland = rows["earwig on Wayland (sway, wtype): ctl stop -> last character"]
    assert 0 < float(wayland[-6]) <= float(wayland[-5]) and float(wayland[-4]) <= 0.2 and wayland[-3].endswith("x")


def test_play_benchmark_prints_enter_to_first_sample_out_against_portaudios_floor():
    """Its smoke run: jfk.flac through the monitor, each line played once with enter."""
    rows = cells_by_row(quick_run("play").stdout)
    ring, floor = rows["enter, line in the ring"], rows["Player.play() alone (PortAudio's floor)"]
    assert int(ring[-4]) >= 1 and int(floor[-4]) == int(ring[-4]), rows  # every line played, both ways
    assert float(ring[-3]) > 0 and float(floor[-3]) > 0 and ring[-1].endswith("x"), rows


@pytest.mark.alone  # real-time cancellers: beside another test file the mic's text was lost once (WER 1.0)
def test_echo_benchmark_prints_bleed_wer_and_return_loss_against_no_loopback():
    """Its smoke run: a loopback 80 ms late with cancellation on and a talker who begins 2 s
    into the speakers, while the canceller is still finding the path, through PulseAudio
    and the live pipeline (the cells counted from the right: a case's label has spaces).
    What is asserted is what the user sees: none of the speakers' words in the Mic column,
    not even their first words, joined to the talker's in one utterance, the talker's
    words in it, and the echo's path found where the loopback puts it. How far each
    canceller got (ERLE) and what they cost depend on how long the run leaves them and on
    the machine: the benchmark reports them, this smoke run only checks they are printed."""
    result = quick_run("echo")
    on = cells_by_row(result.stdout)["80 ms, talker from 2 s, cancellation on"]
    bleed, first_words, wer, double_talk_wer = float(on[-10]), float(on[-9]), float(on[-8]), float(on[-6])
    assert bleed <= 0.05 and first_words == 0.0, on  # the speakers' words stayed out, the first ones too
    assert wer < 0.3 and double_talk_wer < 0.4, on  # the talker's stayed in
    assert 50 < float(on[-2]) < 400, on  # the delay found: the path was heard
    assert all(is_figure(cell) for cell in on[-4:-2] + on[-1:]), on  # ERLE of both cancellers, their CPU
