"""Dictation latency: key release -> the last character in a real text field, against
openai-whisper's ``transcribe()`` of the same audio with the same model started at the
release, in the same run.

The desktop is headless (``headless``): Xvfb, a Tk text field, a PulseAudio whose fake
microphone ``earwig dictate`` captures. For each sentence (espeak-ng, 3-8 s): focus the
field, press the hotkey with xdotool, play the sentence into the microphone, release the
key 0.2 s after it ends. earwig's figure runs from the release to the field's last change
(the Tk field stamps every change with the monotonic clock, which every process shares).
Then, with the dictation idle, the baseline: ``transcribe()`` of the sentence's audio,
timed from its call to its return, as if it had been called at the release. The runs
alternate sentence by sentence, so drift on a shared machine falls on both alike.
"""

from __future__ import annotations

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
    sentences = SENTENCES[:2] if quick else SENTENCES
    model = model_store.load(MODEL)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        files = [_speak(folder, i, text) for i, text in enumerate(sentences)]
        audio = [read_audio(path) for path in files]
        model.transcribe(audio[0], fp16=False, language="en")  # the baseline's own warm-up
        with headless.x_server(), headless.pulse_server(folder / "runtime"):
            field = headless.TextField("earwig-bench-dictation")
            daemon = _Daemon(folder)
            try:
                _dictate(field, files[0])  # loads the final model: not timed
                ours, theirs, typed, written = [], [], [], []
                for path, clip in zip(files, audio):
                    field_before = len(field.changes)
                    released_ns = _dictate(field, path)
                    ours.append((field.changes[-1][0] - released_ns) / 1e9)
                    typed.append(field.text[len(field.changes[field_before - 1][1]):] if field_before else field.text)
                    started = time.perf_counter()
                    written.append(model.transcribe(clip, fp16=False, language="en")["text"])
                    theirs.append(time.perf_counter() - started)
            finally:
                daemon.stop()
                field.close()
    seconds = [len(clip) / 16000 for clip in audio]
    p50, p95 = (lambda v: float(np.percentile(v, 50))), (lambda v: float(np.percentile(v, 95)))
    lines = [f"dictation: {len(sentences)} espeak-ng sentences of {min(seconds):.1f}-{max(seconds):.1f} s, "
             f"model {MODEL}, CPU; Xvfb, a Tk field, PulseAudio's fake microphone"]
    lines += table(("", "p50 s", "p95 s", "WER", "vs baseline p50", "goal"), [
        ("earwig: key release -> last character typed", f"{p50(ours):.2f}", f"{p95(ours):.2f}",
         f"{word_error_rate(sentences, typed):.3f}", f"{p50(ours) / p50(theirs):.2f}x", "<= 0.5x"),
        ("baseline: transcribe() from the release", f"{p50(theirs):.2f}", f"{p95(theirs):.2f}",
         f"{word_error_rate(sentences, written):.3f}", "1.00x", ""),
    ])
    return "\n".join(lines)


class _Daemon:
    """``earwig dictate`` on the fake microphone, ready for the hotkey."""

    def __init__(self, folder: Path) -> None:
        self.err = folder / "dictate.err"
        with open(self.err, "w") as err:
            self.process = subprocess.Popen([sys.executable, "-m", "earwig.cli", "dictate", "--mic", "fakemic"],
                                            stdout=subprocess.DEVNULL, stderr=err)
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


def _speak(folder: Path, index: int, text: str) -> Path:
    path = folder / f"{index}.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(path), text], check=True)
    return path
