"""A scrolling log-mel spectrogram of one source, newest on the right.

Why it reads frames, not messages: the mel actor already publishes every 10 ms frame in a
shared-memory ring; the monitor reads what is new at its own frame rate, so drawing costs
the pipeline nothing, and a slow terminal only makes the picture coarser in time.

Why half blocks: "▀" with the upper mel row as its foreground colour and the lower as its
background shows two rows a terminal cell, in true colour.
"""

from __future__ import annotations

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

#: Frames (10 ms each) a column stands for: 12.5 columns a second, so an 80-column
#: terminal shows the last 6.4 s.
FRAMES_PER_COLUMN = 8
#: Shades of the colour map; styles are made once per (upper, lower) pair of shades.
SHADES = 64
#: Log10 power shown below the loudest frame on screen, as whisper's own clamp (max - 8).
DYNAMIC_RANGE = 8.0
#: matplotlib's "inferno" at nine evenly spaced points: dark is quiet, bright is loud, and
#: brightness grows evenly with the value (perceptually uniform), in colour and in grey.
_INFERNO = np.array([(0, 0, 4), (31, 12, 72), (85, 15, 109), (136, 34, 106), (186, 54, 85),
                     (227, 89, 51), (249, 140, 10), (249, 201, 50), (252, 255, 164)], float)
_RAMP = np.stack([np.interp(np.linspace(0, 1, SHADES), np.linspace(0, 1, len(_INFERNO)), _INFERNO[:, c])
                  for c in range(3)], axis=1).round().astype(int)
_HEX = [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in _RAMP]


class Spectrogram(Widget):
    """``push`` frames ``(n, bins)`` (log10 mel power, as in the rings); ``refresh`` draws."""

    DEFAULT_CSS = """
    Spectrogram {
        height: 25vh;
        max-height: 8;
        width: 1fr;
    }
    """

    def __init__(self, bins: int = 80, history: int = 400, **kwargs) -> None:
        super().__init__(**kwargs)
        #: One column per FRAMES_PER_COLUMN frames (their mean), newest last.
        self._columns = np.zeros((0, bins), np.float32)
        self._partial = np.zeros((0, bins), np.float32)
        self._history = history
        self._styles: dict[tuple[int, int], Style] = {}
        #: The shades last computed, for the columns count and size they were computed at:
        #: render_line runs once per terminal row, the picture changes once per push.
        self._picture: tuple[tuple[int, int, int], np.ndarray | None] = ((-1, 0, 0), None)
        self._pushed = 0

    def push(self, frames: np.ndarray) -> None:
        """New frames of the source, in order."""
        pending = np.concatenate((self._partial, frames))
        whole = len(pending) // FRAMES_PER_COLUMN * FRAMES_PER_COLUMN
        if whole:
            columns = pending[:whole].reshape(-1, FRAMES_PER_COLUMN, pending.shape[1]).mean(axis=1)
            self._columns = np.concatenate((self._columns, columns))[-self._history:]
            self._pushed += len(columns)
            self.refresh()
        self._partial = pending[whole:]

    def render_line(self, y: int) -> Strip:
        width, height = self.size.width, self.size.height
        key = (self._pushed, width, height)
        if self._picture[0] != key:
            self._picture = (key, self._shades(width, height))
        shades = self._picture[1]
        if shades is None:
            return Strip.blank(width)
        upper, lower = shades[2 * y], shades[2 * y + 1]
        return Strip([Segment("▀", self._style(int(u), int(d))) for u, d in zip(upper, lower)], width)

    def _shades(self, width: int, height: int) -> np.ndarray | None:
        """Shade index of each half-cell ``(2 * height, width)``, high frequencies on top."""
        if not len(self._columns) or width <= 0 or height <= 0:
            return None
        shown = self._columns[-width:]
        loudest = float(shown.max())
        level = (np.clip(shown, loudest - DYNAMIC_RANGE, loudest) - (loudest - DYNAMIC_RANGE)) / DYNAMIC_RANGE
        rows = np.linspace(shown.shape[1] - 1, 0, 2 * height).round().astype(int)
        picture = np.zeros((2 * height, width), int)
        picture[:, width - len(shown):] = (level[:, rows].T * (SHADES - 1)).round().astype(int)
        return picture

    def _style(self, upper: int, lower: int) -> Style:
        style = self._styles.get((upper, lower))
        if style is None:
            style = self._styles[upper, lower] = Style(color=_HEX[upper], bgcolor=_HEX[lower])
        return style
