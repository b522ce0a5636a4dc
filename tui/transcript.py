"""One source's text: its Finals, each with its start time, and the current Partial below.

Why the Partial is one widget updated in place: it changes four times a second while the
speaker talks; the Finals above it only grow. The column follows the newest text unless
the user scrolled back to read, and stays where they left it until they scroll down again.
"""

from __future__ import annotations

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from earwig.config import SAMPLE_RATE
from earwig.messages import Final, Partial


def clock(sample: int) -> str:
    """A sample position as minutes:seconds since the source started."""
    minutes, seconds = divmod(int(sample / SAMPLE_RATE), 60)
    return f"{minutes:02d}:{seconds:02d}"


class TranscriptColumn(VerticalScroll):
    """``add_final`` and ``show_partial`` with a source's messages; ``clear`` empties it."""

    DEFAULT_CSS = """
    TranscriptColumn {
        width: 1fr;
        border: round $primary-darken-2;
        padding: 0 1;
    }
    TranscriptColumn > .final { margin-bottom: 0; }
    TranscriptColumn > .partial { color: $text; }
    """

    def __init__(self, title: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.border_title = title
        self.finals: list[Final] = []
        self._partial = Static("", classes="partial")

    def compose(self):
        yield self._partial

    def add_final(self, final: Final) -> None:
        """The kept text of an utterance; its Partial goes away (an empty Final only
        retires the Partial: everything it heard was non-speech)."""
        following = self._following()
        self.show_partial(None)
        if final.text:
            self.finals.append(final)
            line = Text.assemble((f"{clock(final.start)} ", "dim"), final.text)
            self.mount(Static(line, classes="final"), before=self._partial)
        if following:
            self.call_after_refresh(self.scroll_end, animate=False)

    def show_partial(self, partial: Partial | None) -> None:
        """The utterance in progress: committed text plain, tentative text dim."""
        following = self._following()
        if partial is None:
            self._partial.update("")
        else:
            self._partial.update(Text.assemble(partial.committed, " " if partial.committed else "",
                                               (partial.tentative, "dim italic")))
        if following:
            self.call_after_refresh(self.scroll_end, animate=False)

    def clear(self) -> None:
        self.finals.clear()
        for line in self.query(".final"):
            line.remove()
        self._partial.update("")

    def _following(self) -> bool:
        return self.scroll_offset.y >= self.max_scroll_y
