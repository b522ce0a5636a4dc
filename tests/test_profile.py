"""`earwig profile` on a replay of real (espeak-ng) speech: the report's invariants, the
trace's format, the plot, and the one clock every process stamps with."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile

from earwig.audio.files import read_audio
from earwig.profiling.profile_report import STAGES, STAMPS

pytestmark = pytest.mark.pipeline

EARWIG = [sys.executable, "-m", "earwig"]


#: Sentences in the replay, 1.5 s apart: one utterance each.
SENTENCES = 3


@pytest.fixture(scope="module")
def profiled(speech, tmp_path_factory):
    out = tmp_path_factory.mktemp("profile")
    gap = np.zeros(24000, np.float32)
    said = [read_audio(speech[k]) for k in ("a", "b", "a")]
    replay = out / "said.wav"
    soundfile.write(replay, np.concatenate([gap, said[0], gap, said[1], gap, said[2], gap]), 16000)
    # No audio server: the speakers (left enabled) cannot be had, and the replay runs on.
    runtime = tmp_path_factory.mktemp("runtime")
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "PULSE_SERVER": f"unix:{runtime}/none"}
    result = subprocess.run([*EARWIG, "profile", "--replay-mic", str(replay), "--out", str(out)],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("earwig: speakers left out: no audio server"), result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout, out


def test_the_printed_report_states_end_of_speech_to_final(profiled):
    stdout, out = profiled
    row = next(line for line in stdout.splitlines() if line.startswith("end of speech -> Final"))
    count, p50 = int(row.split()[5]), float(row.split()[6])
    assert count == SENTENCES and p50 > 0  # milliseconds
    assert f"Wrote {out / 'report.json'}" in stdout


def test_every_final_has_all_its_stamps_in_order_and_its_stages_add_up(profiled):
    report = json.loads((profiled[1] / "report.json").read_text())
    finals = report["finals"]
    assert [f["source"] for f in finals] == ["mic"] * SENTENCES
    for final in finals:
        stamps = [final["stamps"][name] for name in STAMPS]
        assert all(stamps), final["stamps"]  # every stage stamped, in three processes and here
        assert stamps == sorted(stamps), final["stamps"]
        assert abs(sum(final["stages_s"].values()) - final["end_to_end_s"]) < 0.005
        assert set(final["stages_s"]) == {stage for stage, _, _ in STAGES}
    assert report["end_of_speech_to_final_s"]["count"] == SENTENCES
    # A first Partial races its Final (the preview is niced, best-effort): on a busy machine
    # none may come, so how many did is the report's figure; test_transcription holds its
    # replays for the preview's first Partial and checks that one comes.
    assert 0 <= report["onset_to_first_partial_s"]["count"] <= SENTENCES
    assert report["final"]["model pass"]["p50"] > 0 and report["rtf"]["final"]["p50"] > 0
    assert report["mel"]["mic"]["frames_cpu_s_per_audio_s"] > 0 and report["mel"]["mic"]["pcm_overruns"] == 0
    assert {"capture-mic", "mel", "preview", "final", "supervisor"} <= set(report["processes"])
    assert any(m["role"] == "final" and m["state"] == "ready" and m["load_s"] > 0 for m in report["models"])


def test_the_trace_is_chrome_trace_event_json_with_a_track_per_actor(profiled):
    trace = json.loads((profiled[1] / "trace.json").read_text())
    events = trace["traceEvents"]
    assert {e["ph"] for e in events} <= {"M", "X", "i", "C"}
    tracks = {e["args"]["name"]: e["tid"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert set(tracks) == {"capture-mic", "mel", "preview", "final", "supervisor", "delivery"}
    for event in events:
        assert event["pid"] == 1
        if event["ph"] != "M":
            assert isinstance(event["ts"], float) and event["ts"] >= 0
        if event["ph"] == "X":
            assert event["dur"] >= 0 and event["tid"] in tracks.values()
    passes = [e for e in events if e["ph"] == "X" and e["name"] == "final pass"]
    assert passes and all(e["tid"] == tracks["final"] for e in passes)
    assert len([e for e in events if e["ph"] == "X" and e["name"] == "utterance"]) == SENTENCES
    assert any(e["ph"] == "C" and e["name"].startswith("ring fill") for e in events)


def test_the_latency_plot_is_a_png(profiled):
    assert (profiled[1] / "latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _child_clock(queue) -> None:
    queue.put(time.monotonic_ns())


def test_every_process_stamps_with_one_clock():
    """The stamps of a text come from four processes: a spawned process's monotonic clock
    reads between two readings of its parent's."""
    context = mp.get_context("spawn")
    queue = context.Queue()
    before = time.monotonic_ns()
    child = context.Process(target=_child_clock, args=(queue,))
    child.start()
    theirs = queue.get(timeout=30)
    child.join()
    assert before < theirs < time.monotonic_ns()
