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
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

#: Frames (10 ms each) a column stands for: 10 columns a second, one per frame at the
#: monitor's default frame rate (a steady scroll), so a 40-column half of an 80-column
#: terminal shows the last 4 s.
FRAMES_PER_COLUMN = 10
#: Shades of the colour map; styles are made once per (upper, lower) pair of shades. 32
#: look as smooth as 64 in terminal cells and leave more runs of equal cells to merge.
SHADES = 32
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
        self._cells: dict[int, Segment] = {}
        #: The shades last computed, and the (columns pushed, width, height) they are for.
        self._picture: tuple[tuple[int, int, int], np.ndarray | None] = ((-1, 0, 0), None)
        self._pushed = 0

    def push(self, frames: np.ndarray) -> None:
        """New frames of the source, in order."""
        pending = np.concatenate((self._partial, frames))
        whole = len(pending) // FRAMES_PER_COLUMN * FRAMES_PER_COLUMN
        if whole:
            shown = self._picture[1]
            columns = pending[:whole].reshape(-1, FRAMES_PER_COLUMN, pending.shape[1]).mean(axis=1)
            self._columns = np.concatenate((self._columns, columns))[-self._history:]
            self._pushed += len(columns)
            self._refresh_changed(shown, self._current())
        self._partial = pending[whole:]

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        shades = self._current()
        if shades is None:
            return Strip.blank(width)
        cells = (shades[2 * y] * SHADES + shades[2 * y + 1]).tolist()
        # One segment per run of equal cells: quiet stretches are one segment, not dozens.
        segments, start = [], 0
        for end in range(1, width + 1):
            if end == width or cells[end] != cells[start]:
                segments.append(self._segment(cells[start], end - start))
                start = end
        return Strip(segments, width)

    def _current(self) -> np.ndarray | None:
        """The picture for the frames pushed so far at the widget's size, computed once:
        render_line runs once per terminal row, the picture changes once per push."""
        key = (self._pushed, self.size.width, self.size.height)
        if self._picture[0] != key:
            self._picture = (key, self._shades(self.size.width, self.size.height))
        return self._picture[1]

    def _refresh_changed(self, shown: np.ndarray | None, new: np.ndarray | None) -> None:
        """Repaint only the terminal rows whose cells changed: rows that stay dark (high
        frequencies, silence, a paused or ended source) cost nothing a frame."""
        if shown is None or new is None or shown.shape != new.shape:
            self.refresh()
            return
        height, width = new.shape[0] // 2, new.shape[1]
        changed = (shown != new).reshape(height, 2, width).any(axis=(1, 2))
        if changed.any():
            self.refresh(*(Region(0, int(y), width, 1) for y in np.flatnonzero(changed)))

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

    def _segment(self, cell: int, length: int) -> Segment:
        """``length`` cells of one (upper, lower) shade pair, ``cell = upper * SHADES + lower``;
        segments of one cell (most of them, in speech) are made once and reused."""
        single = self._cells.get(cell)
        if single is None:
            upper, lower = divmod(cell, SHADES)
            single = self._cells[cell] = Segment("▀", Style(color=_HEX[upper], bgcolor=_HEX[lower]))
        return single if length == 1 else Segment("▀" * length, single.style)
