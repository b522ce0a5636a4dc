"""Dictation latency: key release -> the last character in a real window, on X11 and on
Wayland, against openai-whisper's ``transcribe()`` of the same audio with the same model
started at the release, in the same run.

The desktops are headless (``headless``): Xvfb with a Tk text field, a sway with a foot
window, and a PulseAudio whose fake microphone both ``earwig dictate`` daemons capture (each
transcribes only its own dictations). For each sentence (espeak-ng, 3-8 s), on X11: focus
the field, press the hotkey with xdotool, play the sentence into the microphone, release the
key 0.2 s after it ends; on Wayland, where a compositor's key binding runs ``earwig ctl``,
the same with ``earwig ctl start`` and ``earwig ctl stop``. earwig's figure runs from the
release (the call of ``ctl stop``) to the window's last change (the Tk field stamps every
change with the monotonic clock, which every process shares; foot's file is watched every
5 ms). Then, with the dictations idle, the baseline: ``transcribe()`` of the sentence's
audio, timed from its call to its return, as if it had been called at the release. The runs
alternate sentence by sentence, so drift on a shared machine falls on all alike.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from earwig import model_store
from earwig.audio.files import read_audio
from earwig.profiling.harness import headless
from earwig.profiling.harness.scoring import word_error_rate
from earwig.profiling.report import table

SENTENCES = [
    "We will meet in the conference room after lunch on Friday.",
    "Our flight was delayed by two hours because of the storm.",
    "My brother is learning to play the piano this summer.",
    "Please send the quarterly report to the whole team by Friday.",
    "The new library has thousands of books and a quiet reading room.",
    "Turn left at the second traffic light and park behind the old library on the main street.",
    "Remember to water the plants every morning before you leave for work.",
    "The doctor told him to drink more water and sleep longer.",
    "I would like to order a large coffee with milk and two croissants, please.",
    "The train to the city leaves every fifteen minutes from platform four.",
]
MODEL = "base"
HOTKEY = "ctrl+alt+space"
#: Space first: the X server's autorepeat of a held space, fired between the modifiers'
#: release and its own, would type a space into the field.
RELEASE = ["space", "ctrl+alt"]
#: After the last character, how long the field must stay unchanged to count as done.
SETTLED_S = 0.5


def run(quick: bool = False) -> str:
    sentences = SENTENCES[:1] if quick else SENTENCES
    model = model_store.load(MODEL)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        files = [_speak(folder, i, text) for i, text in enumerate(sentences)]
        audio = [read_audio(path) for path in files]
        model.transcribe(audio[0], fp16=False, language="en")  # the baseline's own warm-up
        with headless.x_server(), headless.pulse_server(folder / "runtime"):
            field = headless.TextField("earwig-bench-dictation")
            daemons = [_Daemon(folder, "x11", os.environ)]
            try:
                with headless.wayland_session() as session:
                    # A control socket of its own (one daemon per runtime folder), the same PulseAudio.
                    wayland_env = {**os.environ, "XDG_RUNTIME_DIR": str(_private(folder / "wayland-runtime")),
                                   "PULSE_SERVER": f"unix:{folder / 'runtime' / 'pulse' / 'native'}"}
                    daemons.append(_Daemon(folder, "wayland", wayland_env))
                    window = headless.WaylandWindow(session, "earwig-bench-dictation")
                    try:
                        _dictate(field, files[0])  # each loads its final model: not timed
                        _dictate_by_ctl(window, files[0], wayland_env)
                        x11, wayland, theirs, typed, on_wayland, written = [], [], [], [], [], []
                        for path, clip in zip(files, audio):
                            field_before = len(field.changes)
                            released_ns = _dictate(field, path)
                            x11.append((field.changes[-1][0] - released_ns) / 1e9)
                            typed.append(field.text[len(field.changes[field_before - 1][1]):] if field_before
                                         else field.text)
                            before = len(window.text)
                            seconds, text = _dictate_by_ctl(window, path, wayland_env)
                            wayland.append(seconds)
                            on_wayland.append(text[before:])
                            started = time.perf_counter()
                            written.append(model.transcribe(clip, fp16=False, language="en")["text"])
                            theirs.append(time.perf_counter() - started)
                    finally:
                        window.close()
                        daemons.pop().stop()
            finally:
                for daemon in daemons:
                    daemon.stop()
                field.close()
    seconds = [len(clip) / 16000 for clip in audio]
    p50, p95 = (lambda v: float(np.percentile(v, 50))), (lambda v: float(np.percentile(v, 95)))
    lines = [f"dictation: {len(sentences)} espeak-ng sentences of {min(seconds):.1f}-{max(seconds):.1f} s, "
             f"model {MODEL}, CPU; Xvfb with a Tk field, a headless sway with a foot window, "
             "PulseAudio's fake microphone"]

    def row(name: str, times: list[float], said: list[str], goal: str) -> tuple[str, ...]:
        return (name, f"{p50(times):.2f}", f"{p95(times):.2f}", f"{word_error_rate(sentences, said):.3f}",
                f"{p50(times) / p50(theirs):.2f}x", goal)

    lines += table(("", "p50 s", "p95 s", "WER", "vs baseline p50", "goal"), [
        row("earwig: key release -> last character typed", x11, typed, "<= 0.5x"),
        row("earwig on Wayland (sway, wtype): ctl stop -> last character", wayland, on_wayland, "<= 0.5x"),
        row("baseline: transcribe() from the release", theirs, written, ""),
    ])
    return "\n".join(lines)


def _private(folder: Path) -> Path:
    folder.mkdir(mode=0o700)
    return folder


class _Daemon:
    """``earwig dictate`` on the fake microphone, ready for the hotkey or ``earwig ctl``."""

    def __init__(self, folder: Path, name: str, env) -> None:
        self.err = folder / f"dictate-{name}.err"
        with open(self.err, "w") as err:
            self.process = subprocess.Popen([sys.executable, "-m", "earwig.cli", "dictate", "--mic", "fakemic"],
                                            stdout=subprocess.DEVNULL, stderr=err, env=dict(env))
        deadline = time.monotonic() + 120
        while "earwig dictate: ready" not in self.err.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"earwig dictate did not start: {self.err.read_text()}")
            time.sleep(0.1)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(60)


def _dictate(field: headless.TextField, path: Path) -> int:
    """One dictation as a user does it; returns when the key was released (monotonic ns),
    once the field has stopped changing."""
    field.focus()
    count = len(field.changes)
    subprocess.run(["xdotool", "keydown", HOTKEY], check=True)
    time.sleep(0.3)
    subprocess.run(["paplay", "--device=micfeed", str(path)], check=True)
    time.sleep(0.2)
    released_ns = time.monotonic_ns()
    subprocess.run(["xdotool", "keyup", *RELEASE], check=True)
    deadline = time.monotonic() + 60
    while len(field.changes) == count or time.monotonic_ns() - field.changes[-1][0] < SETTLED_S * 1e9:
        if time.monotonic() > deadline:
            raise RuntimeError("nothing was typed within 60 s of the release")
        time.sleep(0.05)
    return released_ns


def _dictate_by_ctl(window: headless.WaylandWindow, path: Path, env) -> tuple[float, str]:
    """One dictation on Wayland, started and stopped by ``earwig ctl`` as a compositor's key
    binding runs it: seconds from ``ctl stop`` to the window's last change, and its text
    then, once it has stopped changing for SETTLED_S."""
    window.focus()
    before = window.text
    subprocess.run([sys.executable, "-m", "earwig.cli", "ctl", "start"], check=True, env=env, capture_output=True)
    subprocess.run(["paplay", "--device=micfeed", str(path)], check=True)
    time.sleep(0.2)
    released = time.monotonic()
    stop = subprocess.Popen([sys.executable, "-m", "earwig.cli", "ctl", "stop"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    text, changed = before, None
    deadline = released + 60
    while changed is None or time.monotonic() - changed < SETTLED_S:
        if (now := window.text) != text:
            text, changed = now, time.monotonic()
        if time.monotonic() > deadline:
            raise RuntimeError("nothing was typed on Wayland within 60 s of ctl stop")
        time.sleep(0.005)
    stop.wait(60)
    return changed - released, text


def _speak(folder: Path, index: int, text: str) -> Path:
    path = folder / f"{index}.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(path), text], check=True)
    return path
