"""Hotkey dictation end to end: a real X server (Xvfb), the hotkey pressed with xdotool as a
user would, speech played into a headless PulseAudio's fake microphone, base's text typed
into a real Tk text field, and ``earwig ctl`` over the control socket."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from earwig.actors.dictation_delivery import PASTE_SETTLE_S, PasteOffer
from earwig.config import Config, MonitorConfig, SourceConfig
from earwig.profiling.harness import headless
from earwig.session import log as session_log
from earwig.tui.app import MonitorApp
from installed import require
from processes import actor_processes
from speech_text import spoken_sentences, word_error_rate

pytestmark = pytest.mark.service

EARWIG = [sys.executable, "-m", "earwig.cli"]
SAID = ["We will meet in the conference room after lunch on Friday.",
        "Our flight was delayed by two hours because of the storm.",
        "My brother is learning to play the piano this summer."]
HOTKEY = "ctrl+alt+space"  # xdotool's spelling of the default <ctrl>+<alt>+<space>
#: Space first: the X server's autorepeat of a held space, fired between the modifiers'
#: release and its own, would type a space into the focused window (on a busy machine).
RELEASE = ("space", "ctrl+alt")


@pytest.fixture(scope="module")
def display():
    """An Xvfb of its own; DISPLAY points at it for this module's tests."""
    require("Xvfb", "xdotool", "xclip", "espeak-ng")
    with headless.x_server() as display:
        yield display


@pytest.fixture(scope="module")
def sentences(tmp_path_factory) -> list[Path]:
    return spoken_sentences(tmp_path_factory.mktemp("said"), SAID)


class Daemon:
    """``earwig dictate`` on the fake microphone; its stdout (the texts) and stderr (states)."""

    def __init__(self, folder: Path, *flags: str, env: dict[str, str] | None = None) -> None:
        self.out, self.err = folder / "dictate.out", folder / "dictate.err"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.process = subprocess.Popen([*EARWIG, "dictate", "--mic", "fakemic", *flags],
                                            stdout=out, stderr=err, env=env)

    def wait_for(self, text: str, timeout: float = 120.0, where: str = "err") -> str:
        path = self.err if where == "err" else self.out
        deadline = time.monotonic() + timeout
        while text not in path.read_text():
            assert self.process.poll() is None, f"earwig dictate exited: {self.err.read_text()}"
            assert time.monotonic() < deadline, f"no {text!r} from earwig dictate: {self.err.read_text()}"
            time.sleep(0.1)
        return path.read_text()

    def wait_for_count(self, text: str, count: int) -> None:
        """Until ``text`` is on stderr ``count`` times: the daemon says each state it enters."""
        self.wait_for(text)
        _until(lambda: self.err.read_text().count(text) >= count, what=f"{text!r} {count} times")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(60)


@pytest.fixture
def desktop(display, pulse, tmp_path):
    opened: list = []

    def open_entry(title: str) -> headless.TextField:
        opened.append(headless.TextField(title))
        return opened[-1]

    def start_daemon(*flags: str, env: dict[str, str] | None = None) -> Daemon:
        daemon = Daemon(tmp_path, *flags, env=env)
        opened.append(daemon)
        daemon.wait_for("earwig dictate: ready")
        return daemon

    yield open_entry, start_daemon
    for thing in reversed(opened):
        if isinstance(thing, Daemon):
            if thing.process.poll() is None:
                assert thing.stop() == 0
        else:
            thing.close()
    assert not list(Path(os.environ["XDG_RUNTIME_DIR"], "earwig").glob("*.sock"))  # the socket went


def _run(*command: str) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def _say(path: Path) -> None:
    _run("paplay", "--device=micfeed", str(path))


def _until(condition, timeout: float = 90.0, what: str = ""):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return result


def test_hold_the_hotkey_speak_and_the_text_is_typed_into_the_focused_field(desktop, sentences):
    open_entry, start_daemon = desktop
    entry = open_entry("hold-entry")
    daemon = start_daemon()
    for index in (0, 1):  # the second continues the first: a space between
        entry.focus()
        _run("xdotool", "keydown", HOTKEY)
        daemon.wait_for_count("earwig dictate: listening", index + 1)  # the press was taken first
        _say(sentences[index])
        time.sleep(0.3)
        _run("xdotool", "keyup", *RELEASE)
        _until(lambda: entry.text.endswith(SAID[index][-10:]), what=f"dictation {index} in the field")
    assert word_error_rate(" ".join(SAID[:2]), entry.text) <= 0.1, entry.text
    assert ". " in entry.text and ".O" not in entry.text  # joined like one text
    printed = daemon.out.read_text().splitlines()
    assert len(printed) == 2 and word_error_rate(SAID[0], printed[0]) <= 0.1


def test_toggle_mode_with_paste_restores_the_clipboard(desktop, sentences):
    open_entry, start_daemon = desktop
    entry = open_entry("toggle-entry")
    daemon = start_daemon("--dictation-mode", "toggle", "--dictation-delivery", "paste")
    subprocess.run(["xclip", "-selection", "clipboard", "-i"], input=b"what was copied before",
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    entry.focus()
    _run("xdotool", "key", HOTKEY)  # press and release: dictation starts...
    daemon.wait_for("earwig dictate: listening")  # the press was taken before anything is said
    _say(sentences[2])
    time.sleep(0.3)
    _run("xdotool", "key", HOTKEY)  # ...and the second press stops it
    daemon.wait_for("earwig dictate: delivered")
    pasted = _until(lambda: daemon.out.read_text().strip(), what="the text it says it pasted")
    _until(lambda: entry.text == pasted, what="the pasted text in the field")
    assert word_error_rate(SAID[2], entry.text) <= 0.1, entry.text
    _until(lambda: _run("xclip", "-selection", "clipboard", "-o") == "what was copied before",
           timeout=60, what="the clipboard's old text back")


def test_a_paste_puts_the_old_clipboard_back_only_once_the_application_took_the_text(display):
    subprocess.run(["xclip", "-selection", "clipboard", "-i"], input=b"what was copied before", check=True)
    offer = PasteOffer("dictated words")
    for _ in range(3):  # however long the application takes: nothing was fetched yet
        assert not offer.fetched.wait(PASTE_SETTLE_S)
    forms = _run("xclip", "-selection", "clipboard", "-o", "-t", "TARGETS").split()
    assert "UTF8_STRING" in forms and not offer.fetched.is_set()  # asking which forms is not a paste
    assert _run("xclip", "-selection", "clipboard", "-o") == "dictated words"
    assert offer.fetched.wait(30)  # set once the answer is sent: xclip may have printed it first
    subprocess.run(["xclip", "-selection", "clipboard", "-i"], input=b"what was copied before", check=True)
    offer.join(timeout=30)
    assert not offer.is_alive()  # another owner took the clipboard: the offer is over
    assert _run("xclip", "-selection", "clipboard", "-o") == "what was copied before"


def test_when_the_focus_moves_the_text_is_held_on_the_clipboard_and_typed_nowhere(desktop, sentences):
    open_entry, start_daemon = desktop
    first, other = open_entry("first-entry"), open_entry("other-entry")
    daemon = start_daemon()
    first.focus()
    _run("xdotool", "keydown", HOTKEY)
    daemon.wait_for("earwig dictate: listening")
    _say(sentences[0])
    other.focus()  # the user clicked elsewhere while speaking
    _run("xdotool", "keyup", *RELEASE)
    daemon.wait_for("earwig dictate: held: the focus moved")
    assert first.text == "" and other.text == ""
    assert word_error_rate(SAID[0], _run("xclip", "-selection", "clipboard", "-o")) <= 0.1
    assert word_error_rate(SAID[0], daemon.out.read_text()) <= 0.1  # and printed


def test_with_no_window_focused_the_text_is_held_on_the_clipboard_and_ctl_retry_reads_it_again(desktop, sentences):
    _, start_daemon = desktop
    daemon = start_daemon()
    nothing = subprocess.run([*EARWIG, "ctl", "retry"], capture_output=True, text=True, timeout=60)
    assert nothing.returncode == 2 and "no held text to retry" in nothing.stderr, nothing.stderr
    # What X says when no window has the keyboard: PointerRoot (a fresh desktop, or the last
    # focused window closed).
    subprocess.run([sys.executable, "-c", "from Xlib import X, display; d = display.Display(); "
                    "d.set_input_focus(X.PointerRoot, X.RevertToPointerRoot, X.CurrentTime); d.sync()"],
                   check=True)
    assert _run(*EARWIG, "ctl", "start").startswith("listening")
    _say(sentences[1])
    stopped = _run(*EARWIG, "ctl", "stop")
    assert stopped.startswith("held: no window had the keyboard focus"), stopped
    assert word_error_rate(SAID[1], _run("xclip", "-selection", "clipboard", "-o")) <= 0.1
    daemon.wait_for("earwig dictate: held: no window had the keyboard focus")
    # xclip stays as the clipboard's owner: no pipe of ours may be left open in it.
    subprocess.run(["xclip", "-selection", "clipboard", "-i", "/dev/null"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    retried = _run(*EARWIG, "ctl", "retry")  # read again with beam search; held again
    assert retried.startswith("held: retried: the new text is on the clipboard"), retried
    assert word_error_rate(SAID[1], retried.split("\n", 1)[1]) <= 0.1, retried
    assert _run("xclip", "-selection", "clipboard", "-o").strip() == retried.split("\n", 1)[1].strip()
    log = sorted((Path(os.environ["XDG_DATA_HOME"]) / "earwig" / "sessions").glob("*.jsonl"))[-1]
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r.get("revised", False) for r in records][-1] and records[-1]["start"] == records[-2]["start"]


def test_earwig_ctl_drives_a_whole_dictation_without_a_hotkey(desktop, sentences):
    open_entry, start_daemon = desktop
    entry = open_entry("ctl-entry")
    daemon = start_daemon()
    entry.focus()
    assert _run(*EARWIG, "ctl", "status").startswith("ready")
    assert _run(*EARWIG, "ctl", "start").startswith("listening")
    _say(sentences[1])
    stopped = _run(*EARWIG, "ctl", "stop")  # answers once the text is out
    assert stopped.startswith("delivered") and word_error_rate(SAID[1], stopped.split("\n", 1)[1]) <= 0.1
    assert word_error_rate(SAID[1], entry.text) <= 0.1, entry.text
    socket = Path(os.environ["XDG_RUNTIME_DIR"], "earwig", "dictation.sock")
    assert oct(socket.stat().st_mode & 0o777) == "0o600"
    # Its addresses are that socket and the fork server's (multiprocessing's, in a folder of
    # its own that only this user can enter); the rest are pipes, and clients of X and
    # PulseAudio. Nothing listens on, or talks to, the network.
    processes = [psutil.Process(daemon.process.pid), *psutil.Process(daemon.process.pid).children(recursive=True)]
    assert not [c for p in processes for c in p.net_connections(kind="inet")]
    addresses = {c.laddr for p in processes for c in p.net_connections(kind="unix") if c.laddr}
    assert str(socket) in addresses
    for other in addresses - {str(socket)}:
        folder = Path(other).parent
        assert folder.name.startswith("pymp-") and oct(folder.stat().st_mode & 0o777) == "0o700", other


def test_a_dictation_actor_killed_mid_dictation_leaves_its_text_on_the_clipboard(desktop, sentences):
    """kill -9 of the dictation actor while the user speaks: the restarted actor finishes
    that dictation; its text, typed nowhere (the window it was for is not known), is on the
    clipboard and in the session log, and the next dictation works as usual."""
    open_entry, start_daemon = desktop
    entry = open_entry("crash-entry")
    daemon = start_daemon()
    entry.focus()
    _run("xdotool", "keydown", HOTKEY)
    daemon.wait_for("earwig dictate: listening")
    _say(sentences[0])
    socket = str(Path(os.environ["XDG_RUNTIME_DIR"], "earwig", "dictation.sock"))
    actor, = [p for p in actor_processes(daemon.process.pid)
              if any(c.laddr == socket for c in p.net_connections(kind="unix"))]
    actor.kill()
    _run("xdotool", "keyup", *RELEASE)
    daemon.wait_for("earwig dictate: held: dictation was interrupted")
    assert entry.text == ""
    assert word_error_rate(SAID[0], _run("xclip", "-selection", "clipboard", "-o")) <= 0.1
    logged, = session_log.sessions_dir().glob("*.jsonl")
    assert word_error_rate(SAID[0], " ".join(f.text for f in session_log.read(logged))) <= 0.1
    entry.focus()
    assert _run(*EARWIG, "ctl", "start").startswith("listening")
    _say(sentences[1])
    assert _run(*EARWIG, "ctl", "stop").startswith("delivered")
    assert word_error_rate(SAID[1], entry.text) <= 0.1, entry.text


def test_bad_input_gets_one_clear_message(desktop, tmp_path):
    _, start_daemon = desktop
    bad = subprocess.run([*EARWIG, "dictate", "--dictation-hotkey", "<ctrl>+<nosuchkey>"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "dictation.hotkey '<ctrl>+<nosuchkey>' cannot be read" in bad.stderr
    assert "spell it like" in bad.stderr
    missing = subprocess.run([*EARWIG, "ctl", "status"], capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "no earwig dictate is running" in missing.stderr
    start_daemon()
    second = subprocess.run([*EARWIG, "dictate", "--mic", "fakemic"], capture_output=True, text=True, timeout=60)
    assert second.returncode == 2 and "another earwig dictate is already running" in second.stderr


def test_without_a_display_ctl_still_works_and_the_text_is_printed(desktop, sentences):
    _, start_daemon = desktop
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    daemon = start_daemon(env=env)
    assert "there is no X display" in daemon.err.read_text() and "earwig ctl toggle" in daemon.err.read_text()
    _run(*EARWIG, "ctl", "toggle")
    _say(sentences[2])
    stopped = _run(*EARWIG, "ctl", "toggle")
    assert stopped.startswith("held: no desktop to type into")
    assert word_error_rate(SAID[2], daemon.wait_for("summer", where="out")) <= 0.1


def test_the_monitor_runs_dictation_and_d_turns_its_hotkey_off(desktop, sentences):
    open_entry, _ = desktop
    field = open_entry("monitor-entry")
    # Niceness 0: lowering it would lower this test process for good (test_monitor.py).
    config = Config(mic=SourceConfig(device="fakemic"), speakers=SourceConfig(enabled=False),
                    monitor=MonitorConfig(niceness=0))

    async def until(pilot, condition, what: str, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            await pilot.pause(0.2)

    async def dictate(pilot, index: int, heard: bool) -> None:
        """Hold the hotkey over a sentence; where it is ``heard``, speak once dictation listens."""
        field.focus()
        await asyncio.to_thread(_run, "xdotool", "keydown", HOTKEY)
        if heard:
            listening = lambda: "dictation listening" in pilot.app.status.render().plain  # noqa: E731
            await until(pilot, listening, "dictation to listen")
        await asyncio.to_thread(_say, sentences[index])
        await asyncio.to_thread(_run, "xdotool", "keyup", *RELEASE)

    async def run() -> None:
        app = MonitorApp(config)
        async with app.run_test(size=(120, 30)) as pilot:
            status = lambda: app.status.render().plain  # noqa: E731
            # The status bar says how the text gets in: X11 here, typed by pynput.
            await until(pilot, lambda: "dictation ready (pynput)" in status(), "dictation to be ready")
            await dictate(pilot, 0, heard=True)
            await until(pilot, lambda: field.text.endswith("Friday."), "the dictated text in the field")
            assert word_error_rate(SAID[0], field.text) <= 0.1, field.text
            # Typed first, then said: the state comes through the pipeline after the last key.
            await until(pilot, lambda: "dictation delivered" in status(), "dictation to say it delivered")
            await pilot.press("d")
            await until(pilot, lambda: "dictation off" in status(), "dictation off")
            typed = field.text
            await dictate(pilot, 1, heard=False)
            await pilot.pause(3.0)
            assert field.text == typed  # the hotkey is ignored while dictation is off
            await pilot.press("q")
            await asyncio.wait_for(app.pipeline_done.wait(), 60)

    asyncio.run(run())
