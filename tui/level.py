"""One source's level meter, or what the source is doing instead (paused, ended, unavailable).

Why its own widget, drawn with ``render_line``: a level arrives twenty times a second per
source. A Static's update lays the whole screen out again, and formatting text content
costs more than the rest of a frame; this widget keeps its one-line size and builds its
line from a few segments with fixed styles.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.content import Content
from textual.strip import Strip
from textual.widget import Widget

from earwig.messages import Level

#: Room beside the bar: the title ("Speakers "), the figure (" -60.0 dB") and " CLIP".
_BESIDE_BAR = len("Speakers ") + len(" -60.0 dB CLIP") + 1
_FILLED, _EMPTY, _CLIP = Style(color="green"), Style(dim=True), Style(color="red", bold=True)
#: How a state other than a level stands out.
NOTICE = Style(color="yellow", bold=True)


class LevelMeter(Widget):
    DEFAULT_CSS = """
    LevelMeter { height: 1; }
    """

    def __init__(self, title: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.title = title
        self.level: Level | None = None
        #: Shown instead of the bar while set, in its style.
        self.state: tuple[str, Style | None] = ("waiting", None)

    def show(self, level: Level) -> None:
        self.level, self.state = level, ("", None)
        self.refresh()

    def say(self, state: str, style: Style | None = None) -> None:
        self.state = (state, style)
        self.refresh()

    def render(self) -> Content:
        """The line as plain text (what ``render_line`` draws)."""
        return Content("".join(segment.text for segment in self._segments()))

    def render_line(self, y: int) -> Strip:
        return Strip(self._segments()).crop_extend(0, self.size.width, self.rich_style)

    def _segments(self) -> list[Segment]:
        text, style = self.state
        if text or self.level is None:
            return [Segment(f"{self.title}: "), Segment(text, style)]
        cells = max(4, min(40, self.size.width - _BESIDE_BAR))
        filled = self.level.meter_cells(cells)
        return [Segment(f"{self.title:<9}"), Segment("█" * filled, _FILLED), Segment("·" * (cells - filled), _EMPTY),
                Segment(f" {self.level.rms_db:6.1f} dB"), *([Segment(" CLIP", _CLIP)] if self.level.clipped else [])]
