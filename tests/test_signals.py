"""Every long-running command, stopped by a signal once it is at work: SIGINT, SIGINT twice
(a user pressing Ctrl-C again), SIGTERM, each to its whole process group as a terminal
sends them. It exits, with no traceback, leaves no process and no shared-memory segment
behind, and keeps what it owed (the profile's report). "At work" is an event each time:
its rings and actors exist, or its model is in memory; never a number of seconds. And a
SIGTERM as soon as its rings exist, while its actors start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from earwig.shm import segments
from processes import actor_processes

pytestmark = pytest.mark.pipeline

EARWIG = [sys.executable, "-m", "earwig.cli"]
SIGNALS = {"sigint": [signal.SIGINT], "sigint-twice": [signal.SIGINT, signal.SIGINT], "sigterm": [signal.SIGTERM]}
#: A model in memory: more than the interpreter with PyTorch and numpy imported.
MODEL_LOADED_BYTES = 600 * 2**20


def _at_work(process: subprocess.Popen, command: str, starting: bool = False) -> None:
    """Wait until the command is at work: its rings and actors exist, or its model is in
    memory. ``starting``: only until its rings exist, while its actors start."""
    prefix = f"{segments.PREFIX}{process.pid}-"
    deadline = time.monotonic() + 180
    while True:
        assert process.poll() is None, f"{command} exited before it was at work"
        assert time.monotonic() < deadline, f"{command} never got to work"
        if command == "transcribe":
            if psutil.Process(process.pid).memory_info().rss > MODEL_LOADED_BYTES:
                return
        elif segments.existing(prefix) and (starting or actor_processes(process.pid)):
            return
        time.sleep(0.01 if starting else 0.05)


def _ignored(pid: int) -> set[int]:
    """The signals the process ignores (its SigIgn mask, one bit per signal)."""
    status = dict(line.split(":\t", 1) for line in open(f"/proc/{pid}/status").read().splitlines() if ":\t" in line)
    mask = int(status["SigIgn"], 16)
    return {signum for signum in range(1, 65) if mask >> (signum - 1) & 1}


def _left_behind(session: int) -> list[psutil.Process]:
    """Processes still in the command's session (its actors, fork server and resource
    tracker are; none of them starts a session of its own)."""
    left = []
    for candidate in psutil.process_iter():
        try:
            if os.getsid(candidate.pid) == session:
                left.append(candidate)
        except (ProcessLookupError, PermissionError):
            pass
    return left


def _stop(command: str, signals: list[int], long_speech, tmp_path, starting: bool = False) -> None:
    """Run ``command``, send ``signals`` to its process group once it is at work (or
    starting), and check that it ended cleanly, left nothing and kept what it owed."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = {**{k: v for k, v in os.environ.items() if k != "DISPLAY"}, "XDG_RUNTIME_DIR": str(runtime)}
    replay = ["--replay-mic", str(long_speech)]
    argv = {"meter": ["meter", *replay, "--no-speakers"],
            "profile": ["profile", *replay, "--no-speakers", "--out", str(tmp_path / "profile")],
            "dictate": ["dictate", *replay],
            "transcribe": ["transcribe", str(long_speech), str(long_speech)]}[command]
    process = subprocess.Popen([*EARWIG, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env, start_new_session=True)
    try:
        _at_work(process, command, starting)
        assert not _ignored(process.pid) & set(signals), "the command ignores the signal: the test would prove nothing"
        for i, signum in enumerate(signals):
            if i:
                time.sleep(0.3)
            os.killpg(process.pid, signum)
        out, err = process.communicate(timeout=180)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(60)
    assert process.returncode in (0, 130, -signal.SIGTERM), (process.returncode, err)
    if command == "transcribe":  # stopped, not read to the end
        assert process.returncode != 0, (process.returncode, out)
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert psutil.wait_procs(_left_behind(process.pid), timeout=60)[1] == []
    assert segments.existing(f"{segments.PREFIX}{process.pid}-") == []
    if command == "profile":  # what it recorded until then is reported
        assert (tmp_path / "profile" / "report.json").is_file(), err


@pytest.mark.parametrize("signals", SIGNALS.values(), ids=SIGNALS.keys())
@pytest.mark.parametrize("command", ["meter", "profile", "dictate", "transcribe"])
def test_a_signal_ends_the_command_cleanly_and_keeps_what_it_owed(command, signals, long_speech, tmp_path):
    _stop(command, signals, long_speech, tmp_path)


@pytest.mark.parametrize("command", ["meter", "profile", "dictate"])
def test_a_signal_while_the_actors_start_ends_the_command_cleanly(command, long_speech, tmp_path):
    """SIGTERM as soon as the rings exist, before or while the actors are spawned."""
    _stop(command, [signal.SIGTERM], long_speech, tmp_path, starting=True)
