"""``earwig dictate`` on a replayed microphone, no display: how it ends, and what it keeps.
Ctrl-C twice in a row still finishes and logs the dictation in progress and leaves nothing
behind; a replay that ends mid-dictation ends the dictation, and ``ctl`` answers at once;
what the mic hears outside a dictation is not transcribed unless asked for."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from earwig.shm import segments
from earwig.session import log as session_log
from dictate_daemon import env, started  # noqa: F401 (fixtures)
from processes import actor_processes
from speech_text import spoken_file, word_error_rate

pytestmark = pytest.mark.pipeline

SAID = "Please send the quarterly report to the whole team by Friday."


@pytest.fixture(scope="module")
def padded(tmp_path_factory) -> Path:
    """Two seconds of silence, then the sentence: a dictation started at "ready" hears it whole."""
    return spoken_file(tmp_path_factory.mktemp("dictate") / "said.wav", [SAID], "en-us", gap_s=0.5, lead_s=2.0).path


@pytest.fixture(scope="module")
def talk(tmp_path_factory) -> Path:
    """Half a minute of speech: long enough for the preview's first Partial to come while it
    goes on, on a busy machine too (the preview is niced)."""
    said = [SAID, "Our flight was delayed by two hours because of the storm.",
            "My brother is learning to play the piano this summer.",
            "The new library has thousands of books and a quiet reading room.",
            "Remember to water the plants every morning before you leave for work.",
            "The train to the city leaves every fifteen minutes from platform four.",
            "She painted the kitchen a bright shade of yellow last weekend."]
    return spoken_file(tmp_path_factory.mktemp("talk") / "talk.wav", said, "en-us", gap_s=0.6, lead_s=1.0).path


def test_ctrl_c_twice_mid_dictation_still_logs_it_and_leaves_nothing_behind(talk, started):
    daemon = started(talk)
    daemon.wait_for("earwig dictate: ready")
    assert daemon.ctl("start").returncode == 0
    daemon.wait_for("... ")  # a partial: the dictation is hearing speech
    actors = actor_processes(daemon.process.pid)
    prefix = f"{segments.PREFIX}{daemon.process.pid}-"
    assert actors and segments.existing(prefix)
    os.killpg(daemon.process.pid, signal.SIGINT)
    time.sleep(0.3)
    os.killpg(daemon.process.pid, signal.SIGINT)
    assert daemon.process.wait(120) == 0, daemon.err.read_text()
    err = daemon.err.read_text()
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert "earwig: stopping: finishing what was said first" in err
    assert psutil.wait_procs(actors, timeout=60)[1] == []
    assert segments.existing(prefix) == []
    logged, = session_log.sessions_dir().glob("*.jsonl")
    finals = session_log.read(logged)
    assert finals and finals[-1].text.strip(), finals  # the dictation's words, cut where Ctrl-C came
    assert daemon.out.read_text().strip()  # and printed


def test_a_replay_that_ends_mid_dictation_ends_it_and_ctl_answers_at_once(padded, started):
    daemon = started(padded)
    daemon.wait_for("earwig dictate: ready")
    assert daemon.ctl("start").returncode == 0
    daemon.wait_for("Friday", where="out")  # the replay ended, the dictation with it: its text
    assert word_error_rate(SAID, daemon.out.read_text()) <= 0.2, daemon.out.read_text()
    stopped = daemon.ctl("stop")
    assert stopped.returncode == 0 and "Friday" in stopped.stdout, stopped
    again = daemon.ctl("start")
    assert again.returncode == 2 and "the mic's replay has ended" in again.stderr, again
    daemon.process.send_signal(signal.SIGINT)
    assert daemon.process.wait(120) == 0, daemon.err.read_text()


@pytest.mark.parametrize("outside", [False, True])
def test_what_the_mic_hears_outside_a_dictation_is_kept_only_when_asked(padded, started, outside):
    """The mic hears the room: without a dictation nothing of it is transcribed or logged,
    unless dictation.transcribe_outside asks for it."""
    daemon = started(padded, *(["--dictation-transcribe-outside"] if outside else []))
    daemon.wait_for("the mic's replay has ended")
    daemon.process.send_signal(signal.SIGINT)
    assert daemon.process.wait(120) == 0, daemon.err.read_text()
    logged = [f.text for path in session_log.sessions_dir().glob("*.jsonl") for f in session_log.read(path)]
    if outside:
        assert word_error_rate(SAID, " ".join(logged)) <= 0.2, logged
    else:
        assert logged == [] and "... " not in daemon.err.read_text()  # no text, not even a partial

