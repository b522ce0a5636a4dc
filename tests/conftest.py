"""Fixtures shared by the test suite: real services (PulseAudio), real speech, leak checks;
and the tiers every test is marked with (tests/README.md), which are checked, not trusted."""

from __future__ import annotations

import _posixsubprocess
import os
import signal
import subprocess
from pathlib import Path

import pytest

from earwig.profiling.harness import headless
from earwig.shm import segments
from installed import require



#: Every test carries exactly one tier: the heaviest thing it needs. ``scripts/test --fast``
#: runs the pure ones; ``-m model``, ``-m pipeline`` ... select the others.
TIERS = {
    "pure": "runs in the test's own process alone: no child process, audio server, display or model weights",
    "model": "reads real Whisper or Silero weights in the test's own process; starts no process",
    "pipeline": "starts real processes: actors under a supervisor, the earwig CLI, a process sharing a ring",
    "service": "needs a service its fixture starts: PulseAudio, Xvfb, a headless sway, tmux",
    "bench": "a benchmark's smoke run (python -m earwig.profiling.bench NAME --quick)",
}
#: What a service test's fixtures are called; a test that asks for one is a service test.
SERVICE_FIXTURES = {"pulse", "desktop", "sway", "terminal_factory"}
#: Programs a pure or model test may run, none of them the code under test: espeak-ng makes
#: its speech, ldconfig is how ctypes finds a shared library (libspeexdsp, PortAudio), and
#: multiprocessing's resource tracker comes with any shared memory (a ring in the test's process).
ALLOWED_PROGRAMS = {"espeak-ng", "ldconfig"}
RESOURCE_TRACKER = b"multiprocessing.resource_tracker"
#: Seconds the slowest test files took in a fresh clone's CI run (2026-12-06, two workers).
#: scripts/test hands whole files to its workers in this order, the longest first, so that
#: the short files fill in beside the long ones and no worker is left with a long file at
#: the end. Only the order depends on these figures; a file not listed goes last.
FILE_SECONDS = {
    "test_served.py": 559, "test_kept_text.py": 268, "test_bench_latency.py": 249, "test_cli.py": 204,
    "test_bench_resources.py": 195, "test_monitor.py": 194, "test_monitor_terminal.py": 183,
    "test_signals.py": 160, "test_transcription.py": 136, "test_dictation.py": 136, "test_bench_text.py": 127,
    "test_echo.py": 62, "test_dictate_lifecycle.py": 59, "test_encoder_windows.py": 49, "test_mel_actor.py": 38,
    "test_file_streaming.py": 37, "test_capture_pulse.py": 36, "test_profile.py": 31, "test_supervisor.py": 25,
    "test_model_store.py": 25, "test_session_log.py": 22, "test_dictation_wayland.py": 35,
}

#: Files whose service scripts/test installs beside the first test files (vLLM: 1-2 minutes).
WAITS_FOR_SETUP = ("test_served.py",)


#: Signals the tests send to the commands they start, as a terminal or a session would.
SENT_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def pytest_configure(config):
    # A suite started in the background (``&`` in a script, nohup) ignores SIGINT or SIGHUP,
    # and every process it starts would inherit that: a Ctrl-C test would pass without its
    # Ctrl-C ever arriving (``earwig transcribe`` simply read to the end). The tests' commands
    # get them as from a terminal.
    for signum in SENT_SIGNALS:
        if signal.getsignal(signum) == signal.SIG_IGN:
            signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
    for name, meaning in TIERS.items():
        config.addinivalue_line("markers", f"{name}: {meaning}")
    config.addinivalue_line("markers", "alone: run by scripts/test after the others, with no test file beside it")


def pytest_collection_modifyitems(config, items):
    """A test without exactly one tier, or a test of a service not marked so, is refused
    before anything runs: the fast path must not pick up a slow test by accident."""
    wrong = []
    for item in items:
        tiers = sorted({mark.name for mark in item.iter_markers() if mark.name in TIERS})
        if len(tiers) != 1:
            wrong.append(f"{item.nodeid}: {len(tiers)} tiers {tiers}, want one of {sorted(TIERS)}")
        elif SERVICE_FIXTURES & set(item.fixturenames) and tiers != ["service"]:
            wrong.append(f"{item.nodeid}: uses {sorted(SERVICE_FIXTURES & set(item.fixturenames))}, "
                         f"so its tier is service, not {tiers[0]}")
    if wrong:
        raise pytest.UsageError("tests/README.md, tiers:\n" + "\n".join(wrong))
    order = sorted(FILE_SECONDS, key=lambda name: -FILE_SECONDS[name])
    for name in WAITS_FOR_SETUP:  # third: by the time a worker takes it, its setup is done
        order.insert(2, order.pop(order.index(name)))
    items.sort(key=lambda item: order.index(item.path.name) if item.path.name in order else len(order))


class TierBroken(pytest.fail.Exception):
    """Raised where a pure or model test does what its tier rules out. A BaseException, as
    pytest's failures are, so that no ``except Exception`` in the code under test hides it."""


@pytest.fixture(autouse=True)
def tier_kept(request, monkeypatch):
    """A pure test that starts a process, reads model weights or opens an audio stream, or a
    model test that starts a process, fails here and names what it did."""
    tier = next((mark.name for mark in request.node.iter_markers() if mark.name in TIERS), None)
    if tier not in ("pure", "model"):
        yield
        return

    def refuse(what: str):
        raise TierBroken(f"a {tier} test {what}: mark it {'model, ' if tier == 'pure' else ''}pipeline "
                         "or service (tests/README.md)", pytrace=False)

    import onnxruntime
    import sounddevice
    import torch

    def fork_exec(args, *rest):
        program = os.path.basename(os.fsdecode(args[0])) if args else "?"
        if program not in ALLOWED_PROGRAMS and not any(RESOURCE_TRACKER in os.fsencode(arg) for arg in args):
            refuse(f"started a process ({program})")
        return real_fork_exec(args, *rest)

    real_fork_exec = _posixsubprocess.fork_exec
    monkeypatch.setattr(_posixsubprocess, "fork_exec", fork_exec)  # multiprocessing's spawn
    monkeypatch.setattr(subprocess, "_fork_exec", fork_exec)  # subprocess and asyncio's
    monkeypatch.setattr(subprocess, "_USE_POSIX_SPAWN", False)
    monkeypatch.setattr(os, "fork", lambda: refuse("forked"))
    if tier == "pure":
        monkeypatch.setattr(torch, "load", lambda *a, **k: refuse("read model weights (torch.load)"))
        monkeypatch.setattr(onnxruntime, "InferenceSession", lambda *a, **k: refuse("read model weights (onnx)"))
        monkeypatch.setattr(sounddevice._StreamBase, "__init__", lambda *a, **k: refuse("opened an audio stream"))
    yield


@pytest.fixture(autouse=True)
def private_dirs(tmp_path, monkeypatch):
    """Settings, logs and saved transcripts of a test live in its own folder, never in
    ``$HOME`` (the model cache stays shared: converting weights per test would be slow)."""
    for variable, folder in (("XDG_CONFIG_HOME", "config"), ("XDG_STATE_HOME", "state"),
                             ("XDG_DATA_HOME", "data")):
        monkeypatch.setenv(variable, str(tmp_path / folder))


@pytest.fixture
def ring_prefix():
    """A fresh segment prefix for one test; fails the test if any of its segments remain."""
    prefix = segments.run_prefix()
    yield prefix
    left = segments.existing(prefix)
    for name in left:
        segments.remove(name)
    assert not left, f"test leaked shared-memory segments: {left}"


@pytest.fixture(scope="session")
def pulse(tmp_path_factory):
    """A headless PulseAudio (``earwig.profiling.harness.headless``): speakers ``sysout``, a fake
    microphone ``fakemic`` fed by playing into ``micfeed``. This process and every actor it
    spawns talk to it."""
    require("pulseaudio")
    with headless.pulse_server(tmp_path_factory.mktemp("xdg-runtime")) as env:
        yield env


def speak(text: str, path: Path) -> Path:
    """Real synthetic speech from espeak-ng, as a wav file."""
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(path), text], check=True)
    return path


@pytest.fixture(scope="session")
def speech(tmp_path_factory):
    """Two different sentences of espeak-ng speech (about 3-4 s each)."""
    require("espeak-ng")
    folder = tmp_path_factory.mktemp("speech")
    return {
        "a": speak("The quick brown fox jumps over the lazy dog near the river bank.", folder / "a.wav"),
        "b": speak("Please remember to water the plants every morning before work.", folder / "b.wav"),
    }


@pytest.fixture(scope="session")
def long_speech(tmp_path_factory, speech):
    """About twelve seconds of speech: both sentences twice, as one file."""
    import numpy as np
    import soundfile

    from earwig.audio.files import read_audio

    parts = [read_audio(speech[k]) for k in ("a", "b", "a", "b")]
    path = tmp_path_factory.mktemp("long") / "long.wav"
    soundfile.write(path, np.concatenate(parts), 16000)
    return path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI nothing may be skipped: scripts/setup installs every service the tests use."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI, which installs everything: {report.longrepr}"
