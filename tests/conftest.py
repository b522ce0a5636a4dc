"""Fixtures shared by the test suite: real services (PulseAudio), real speech, leak checks."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from earwig.profiling.harness import headless
from earwig.shm import segments



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
    if shutil.which("pulseaudio") is None:
        pytest.skip("pulseaudio is not installed (scripts/setup installs it)")
    with headless.pulse_server(tmp_path_factory.mktemp("xdg-runtime")) as env:
        yield env


def speak(text: str, path: Path) -> Path:
    """Real synthetic speech from espeak-ng, as a wav file."""
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(path), text], check=True)
    return path


@pytest.fixture(scope="session")
def speech(tmp_path_factory):
    """Two different sentences of espeak-ng speech (about 3-4 s each)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (scripts/setup installs it)")
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
