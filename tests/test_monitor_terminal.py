"""`earwig monitor` in a real terminal (tmux): what a user sees, read back with capture-pane."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import soundfile

from earwig.audio.files import read_audio
from earwig.shm import segments
from earwig.session import log as session_log
from installed import require
from processes import actor_processes
from speech_text import spoken_file, word_error_rate
from test_transcription import CLEAR_SAID as SAID
from test_transcription import VOICES

pytestmark = pytest.mark.service

EARWIG = [sys.executable, "-m", "earwig.cli"]
COLUMNS, ROWS = 120, 32


class Terminal:
    """A detached tmux session of its own server, running one command."""

    def __init__(self, folder: Path, command: list[str], env: dict[str, str] | None = None) -> None:
        self.socket = f"earwig-test-{os.getpid()}-{time.monotonic_ns()}"
        self.exit_file = folder / "exit-code"
        conf = folder / "tmux.conf"
        conf.write_text("set -g set-clipboard on\n")  # OSC 52 from the app fills tmux's buffer
        settings = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items())
        shell = (f"TERM=xterm-256color COLORTERM=truecolor {settings} {shlex.join(command)}; "
                 f"echo $? > {shlex.quote(str(self.exit_file))}; sleep 60")
        self._tmux("-f", str(conf), "new-session", "-d", "-x", str(COLUMNS), "-y", str(ROWS), shell)

    def _tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], check=True, capture_output=True,
                              text=True).stdout

    def screen(self) -> list[str]:
        return self._tmux("capture-pane", "-p").splitlines()

    def press(self, key: str) -> None:
        self._tmux("send-keys", key)

    def clipboard(self) -> str:
        return self._tmux("show-buffer")

    def pid(self) -> int:
        return int(self._tmux("list-panes", "-F", "#{pane_pid}").strip())

    def full_screen(self) -> bool:
        """Whether the pane shows an application's alternate screen (the app's, until it
        gives the terminal back)."""
        return self._tmux("display-message", "-p", "#{alternate_on}").strip() == "1"

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


def columns(screen: list[str]) -> dict[str, str]:
    """The Mic and Speakers columns' text: the box rows between ╭ and ╰, split at ││
    (empty before the app has drawn them; the Mic's alone where the speakers are off)."""
    top = next((i for i, line in enumerate(screen) if "╭─ Mic" in line), None)
    if top is None:
        return {"mic": "", "speakers": ""}
    bottom = next(i for i, line in enumerate(screen) if i > top and line.startswith("╰"))
    left, right = [], []
    for line in screen[top + 1:bottom]:
        middle = line.find("││")
        if middle < 0:
            left.append(line[1:].rstrip()[:-1])
            continue
        left.append(line[1:middle])
        right.append(line[middle + 2:].rstrip()[:-1])
    return {"mic": " ".join(left).strip(), "speakers": " ".join(right).strip()}


#: The start time in front of each Final.
STAMP = re.compile(r"\b\d\d:\d\d\b")


def transcript(text: str) -> str:
    """A column's words without the Finals' mm:ss stamps."""
    return STAMP.sub(" ", text)


@pytest.fixture
def terminal_factory(tmp_path):
    require("tmux", "espeak-ng")
    opened: list[Terminal] = []

    def open_terminal(command: list[str], env: dict[str, str] | None = None) -> Terminal:
        folder = tmp_path / f"terminal-{len(opened)}"
        folder.mkdir()
        opened.append(Terminal(folder, command, env))
        return opened[-1]

    yield open_terminal
    for terminal in opened:
        terminal.close()


def _wait(condition, timeout: float, what: str, terminal: Terminal):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}; the screen:\n" + "\n".join(terminal.screen()))


def test_both_replays_reach_their_columns_then_copy_save_and_quit(terminal_factory, tmp_path):
    files = {s: spoken_file(tmp_path / f"{s}.wav", said, VOICES[s]).path for s, said in SAID.items()}
    terminal = terminal_factory([*EARWIG, "monitor", "--replay-mic", str(files["mic"]),
                                 "--replay-speakers", str(files["speakers"]), "--keep-audio"])
    app_pid = _app_pid(terminal)

    def both_heard() -> dict[str, str] | None:
        shown = columns(terminal.screen())
        finals = all(len(STAMP.findall(shown[s])) == len(SAID[s]) for s in SAID)
        text = {s: transcript(t) for s, t in shown.items()}
        done = finals and all(word_error_rate(" ".join(SAID[s]), text[s]) <= 0.2 for s in SAID)
        return text if done else None

    text = _wait(both_heard, 200, "both columns' text", terminal)
    for source, other in (("mic", "speakers"), ("speakers", "mic")):
        assert word_error_rate(" ".join(SAID[other]), text[source]) >= 0.7, text  # no cross-over
    # The screen runs at nice 10, every thread of it; the supervisor and the actors do not
    # (the preview has its own 10; the replays' capture actors may have ended already).
    assert {_nice(thread.id) for thread in psutil.Process(app_pid).threads()} == {10}
    supervisor, = [c for c in psutil.Process(app_pid).children() if "resource_tracker" not in " ".join(c.cmdline())]
    actors = [_nice(a.pid) for a in actor_processes(supervisor.pid)]
    assert _nice(supervisor.pid) == 0 and 0 in actors and set(actors) <= {0, 10}, actors
    # Nothing listens on the network, and nothing is sent: no process holds an inet socket.
    processes = [psutil.Process(app_pid), *psutil.Process(app_pid).children(recursive=True)]
    assert len(processes) >= 5 and not [c for p in processes for c in p.net_connections(kind="inet")]

    terminal.press("y")  # the newest Final, through OSC 52 into tmux's buffer
    copied = _wait(lambda: _buffer(terminal), 10, "the copied Final", terminal)
    assert min(word_error_rate(said, copied) for s in SAID for said in SAID[s]) <= 0.2, copied

    terminal.press("w")
    saved = _wait(lambda: list((tmp_path / "data" / "earwig" / "transcripts").glob("*.txt")), 10,
                  "the saved transcript", terminal)
    lines = saved[0].read_text().splitlines()
    assert sum("Mic]" in line for line in lines) == len(SAID["mic"])
    assert sum("Speakers]" in line for line in lines) == len(SAID["speakers"])
    assert oct(saved[0].stat().st_mode & 0o777) == "0o600"

    # The last Final can come before a replay has played its trailing silence: the kept audio
    # is checked against the whole file once both meters say their replay ended.
    _wait(lambda: sum(line.count("replay ended") for line in terminal.screen()) == 2, 60, "both replays to end",
          terminal)
    terminal.press("q")
    exit_file = tmp_path / "terminal-0" / "exit-code"
    _wait(exit_file.exists, 60, "the app to exit", terminal)
    assert exit_file.read_text().strip() == "0"
    assert not list(Path("/dev/shm").glob(f"{segments.PREFIX}{app_pid}-*"))
    # --keep-audio: each source's audio beside the session log, as long as what was played.
    for source, played in files.items():
        kept, = (tmp_path / "data" / "earwig" / "sessions").glob(f"*-{source}.flac")
        assert abs(soundfile.info(kept).frames - len(read_audio(played))) < 160


def test_without_an_audio_server_the_mic_column_says_why_and_the_replay_runs(terminal_factory, tmp_path):
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    speakers = spoken_file(tmp_path / "speakers.wav", SAID["speakers"][:1], VOICES["speakers"]).path
    terminal = terminal_factory([*EARWIG, "monitor", "--replay-speakers", str(speakers)],
                                env={"XDG_RUNTIME_DIR": str(runtime), "PULSE_SERVER": f"unix:{runtime}/none"})

    def shown() -> dict[str, str] | None:
        text = columns(terminal.screen())
        heard = word_error_rate(SAID["speakers"][0], transcript(text["speakers"])) <= 0.2
        return text if heard else None

    text = _wait(shown, 200, "the speakers' text", terminal)
    assert "No mic audio: no audio server" in text["mic"] and "Fix: start PulseAudio" in text["mic"]
    terminal.press("q")
    _wait((tmp_path / "terminal-0" / "exit-code").exists, 60, "the app to exit", terminal)


#: How a monitor ends other than by q: ``kill PID``; Ctrl-C twice, as ``kill -INT`` sends it
#: (in the app's raw terminal Ctrl-C is a key); its terminal closed (SIGHUP to the terminal's
#: whole process group: the app, its pipeline's processes and the shell).
STOPS = {"sigterm": [signal.SIGTERM], "sigint-twice": [signal.SIGINT, signal.SIGINT], "terminal-closed": []}


@pytest.mark.parametrize("stop", STOPS)
def test_a_signal_or_a_closed_terminal_ends_the_monitor_and_keeps_what_it_showed(stop, terminal_factory,
                                                                               long_speech, tmp_path):
    terminal = terminal_factory([*EARWIG, "monitor", "--replay-mic", str(long_speech), "--no-speakers"])
    app = psutil.Process(_app_pid(terminal))
    shown = _wait(lambda: STAMP.findall(columns(terminal.screen())["mic"]), 200, "a first Final", terminal)
    pipeline = app.children(recursive=True)
    if stop == "terminal-closed":
        terminal.close()
    for i, signum in enumerate(STOPS[stop]):
        if i:
            time.sleep(0.3)
        app.send_signal(signum)
    assert psutil.wait_procs([app, *pipeline], timeout=120)[1] == []
    assert segments.existing(f"{segments.PREFIX}{app.pid}-") == []
    logged, = session_log.sessions_dir().glob("*.jsonl")
    assert len(session_log.read(logged)) >= len(shown)
    if stop != "terminal-closed":
        _wait((tmp_path / "terminal-0" / "exit-code").exists, 30, "the shell to go on", terminal)
        assert (tmp_path / "terminal-0" / "exit-code").read_text().strip() == "0"
        assert not terminal.full_screen() and "Traceback" not in "\n".join(terminal.screen())


def _app_pid(terminal: Terminal) -> int:
    """The earwig process the terminal's shell runs, once it has started."""
    return _wait(lambda: next((c.pid for c in _children(terminal.pid()) if "earwig.cli" in " ".join(c.cmdline())),
                              None), 30, "the app's process", terminal)


def _children(pid: int):
    return psutil.Process(pid).children(recursive=True)


def _nice(thread_or_process: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, thread_or_process)


def _buffer(terminal: Terminal) -> str | None:
    try:
        return terminal.clipboard() or None
    except subprocess.CalledProcessError:  # no buffer yet
        return None
