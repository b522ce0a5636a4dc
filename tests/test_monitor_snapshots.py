"""The monitor's main screen as pictures (pytest-textual-snapshot), driven by hand with fixed
data: spectrogram frames, levels, Finals, a Partial, model states.

``pytest tests/test_monitor_snapshots.py --snapshot-update`` rewrites the pictures after an
intended change; the report of a failed run shows old and new side by side.
"""

from __future__ import annotations

import numpy as np
import pytest

from earwig.config import Config
from earwig.errors import EarwigError
from earwig.messages import Final, Level, ModelState, Partial
from earwig.tui.app import MonitorApp
from earwig.tui.spectrogram import FRAMES_PER_COLUMN

pytestmark = pytest.mark.pure

SECOND = 16_000


def _frames(columns: int, low_bins: int) -> np.ndarray:
    """A fixed picture: a pitch contour (harmonics that rise and fall) over quiet bins."""
    frames = np.full((columns * FRAMES_PER_COLUMN, 80), -6.5, np.float32)
    for index in range(len(frames)):
        base = low_bins + int(4 * np.sin(index / 40))
        for harmonic in range(1, 5):
            frames[index, min(79, base * harmonic)] = 1.0 - 0.3 * harmonic
    return frames


async def _fill(pilot) -> None:
    app: MonitorApp = pilot.app
    app.spectrograms["mic"].push(_frames(120, 8))
    app.spectrograms["speakers"].push(_frames(120, 14))
    app.handle(ModelState(role="preview", model="tiny.en", state="ready", device="cpu", memory_bytes=208 << 20))
    app.handle(ModelState(role="final", model="base", state="loading", device="cpu"))
    app.handle(Level(source="mic", end=SECOND, rms_db=-18.0, peak_db=-3.0, clipped=False))
    app.handle(Level(source="speakers", end=SECOND, rms_db=-2.0, peak_db=0.0, clipped=True))
    app.handle(Final(source="mic", start=2 * SECOND, end=6 * SECOND, language="en",
                     text="We will meet in the conference room after lunch on Friday."))
    app.handle(Final(source="mic", start=75 * SECOND, end=80 * SECOND, language="en",
                     text="My brother is learning to play the piano this summer."))
    app.handle(Partial(source="mic", start=83 * SECOND, end=85 * SECOND,
                       committed="Our flight was", tentative="delayed by two"))
    app.handle(Final(source="speakers", start=SECOND, end=5 * SECOND, language="en",
                     text="Turn left at the second traffic light."))
    app.status.final_after_s = 1.02
    app.draw_frame()
    await pilot.pause()


def test_main_screen_in_an_80x24_terminal(snap_compare):
    assert snap_compare(MonitorApp(Config(), pipeline=False), run_before=_fill, terminal_size=(80, 24))


def test_main_screen_wide_with_a_selected_final_and_a_source_without_audio(snap_compare):
    async def run_before(pilot) -> None:
        await _fill(pilot)
        app: MonitorApp = pilot.app
        app.show_unavailable("speakers", EarwigError("no loopback of the speakers found",
                                                     "on Linux use PulseAudio/PipeWire"))
        await pilot.click("#column-mic", offset=(3, 1))  # the first Final's first row
        await pilot.press("m")

    assert snap_compare(MonitorApp(Config(), pipeline=False), run_before=run_before, terminal_size=(140, 40))
