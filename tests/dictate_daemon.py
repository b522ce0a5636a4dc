"""``earwig dictate`` run by a test on a replayed microphone, with no display (its text is
printed), driven by ``earwig ctl`` over a control socket of the test's own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

EARWIG = [sys.executable, "-m", "earwig.cli"]


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    """No display (the text is printed), and a control socket of this test's own."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    return {**{k: v for k, v in os.environ.items() if k != "DISPLAY"}, "XDG_RUNTIME_DIR": str(runtime)}


@pytest.fixture
def started(tmp_path, env):
    """``earwig dictate`` on a replay; whatever a test leaves running (it failed half way)
    is killed with its process group, so nothing outlives the test."""
    daemons = []

    def start(replay: Path, *flags: str) -> Dictate:
        daemons.append(Dictate(tmp_path, replay, env, *flags))
        return daemons[-1]
    yield start
    for daemon in daemons:
        if daemon.process.poll() is None:
            os.killpg(daemon.process.pid, signal.SIGKILL)
            daemon.process.wait(60)


class Dictate:
    def __init__(self, folder: Path, replay: Path, env: dict[str, str], *flags: str) -> None:
        self.env, self.err, self.out = env, folder / "err", folder / "out"
        with open(self.err, "w") as err, open(self.out, "w") as out:
            # Its own process group: the test signals the group, as a terminal's Ctrl-C does.
            self.process = subprocess.Popen([*EARWIG, "dictate", "--replay-mic", str(replay), *flags], stdout=out,
                                            stderr=err, env=env, start_new_session=True)

    def wait_for(self, text: str, where: str = "err", timeout: float = 120.0) -> None:
        path = self.err if where == "err" else self.out
        deadline = time.monotonic() + timeout
        while text not in path.read_text():
            assert self.process.poll() is None, self.err.read_text()
            assert time.monotonic() < deadline, f"no {text!r}: {self.err.read_text()}"
            time.sleep(0.05)

    def ctl(self, action: str) -> subprocess.CompletedProcess:
        return subprocess.run([*EARWIG, "ctl", action], capture_output=True, text=True, env=self.env, timeout=100)


