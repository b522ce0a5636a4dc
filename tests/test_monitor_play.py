"""The monitor's `enter`: the selected line's own samples played through PulseAudio's
speakers, recorded back from their monitor; the speakers' loopback hears the playback and
the Speakers column does not transcribe it; the session's audio is gone at its end."""

from __future__ import annotations

import asyncio
import time

import msgspec
import numpy as np

from earwig.audio.files import read_audio
from earwig.config import Config, SourceConfig
from earwig.messages import Final
from earwig.profiling.harness import headless
from earwig.supervisor import session_log
from earwig.tui.app import MonitorApp
from test_capture_pulse import best_correlation


async def _until(pilot, condition, timeout: float = 150.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.2)


def test_enter_plays_the_selected_line_which_the_speakers_column_does_not_transcribe(pulse, speech):
    """The mic replays a sentence; the speakers are PulseAudio's live loopback. Select the
    mic's line, press enter: the loopback records the line's samples (correlation > 0.9),
    the speakers' utterance of it gets a Final marked echo (logged, not shown)."""
    config = Config(mic=SourceConfig(replay=str(speech["a"])), speakers=SourceConfig(device="sysout.monitor"),
                    dictation=msgspec.structs.replace(Config().dictation, in_monitor=False),
                    monitor=msgspec.structs.replace(Config().monitor, niceness=0))
    said = read_audio(speech["a"])

    async def run() -> tuple[MonitorApp, Final, np.ndarray]:
        app = MonitorApp(config)
        speakers_finals: list[Final] = []
        real_handle = app.handle

        def counting(message) -> None:
            if isinstance(message, Final) and message.source == "speakers":
                speakers_finals.append(message)
            real_handle(message)

        app.handle = counting
        async with app.run_test(size=(120, 30)) as pilot:
            await _until(pilot, lambda: any(final.text for final in app.columns["mic"].finals))
            assert session_log.audio_path(app.session_log, "mic").exists()  # kept while the session runs
            app.columns["mic"].focus()
            await pilot.press("up")
            line = app.selected
            assert line is not None and line.source == "mic" and line.text
            with headless.speakers_recorded() as recorder:
                await pilot.press("enter")
                await _until(pilot, lambda: speakers_finals)
            assert not app.columns["speakers"].finals  # heard, and not shown
            await pilot.press("q")
            await asyncio.wait_for(app.pipeline_done.wait(), 60)
        assert all(final.echo for final in speakers_finals), speakers_finals
        return app, line, recorder.audio()

    app, line, heard = asyncio.run(run())
    assert best_correlation(heard, said[line.start:line.end]) > 0.9
    logged = session_log.read(app.session_log)
    assert [final.echo for final in logged if final.source == "speakers"] == [True]
    assert not session_log.audio_path(app.session_log, "mic").exists()  # no --keep-audio: gone at the end
