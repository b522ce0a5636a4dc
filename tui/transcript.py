"""One source's text: its Finals, each with its start time, and the current Partial below.

Why the Partial is one widget updated in place: it changes four times a second while the
speaker talks; the Finals above it only grow. The column follows the newest text unless
the user scrolled back to read, and stays where they left it until they scroll down again.
A click on a Final selects it (for the copy key).
"""

from __future__ import annotations

from textual.containers import VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widgets import Static

from earwig.export import clock
from earwig.messages import Final, Partial


class FinalLine(Static):
    """One Final; clicking it selects it."""

    class Clicked(Message):
        def __init__(self, line: FinalLine) -> None:
            super().__init__()
            self.line = line

    def __init__(self, final: Final) -> None:
        super().__init__(Content.assemble((f"{clock(final.start)} ", "dim"), final.text), classes="final")
        self.final = final

    def on_click(self) -> None:
        self.post_message(self.Clicked(self))


class TranscriptColumn(VerticalScroll):
    """``add_final`` and ``show_partial`` with a source's messages; ``clear`` empties it;
    ``show_problem`` says why the source gives no text (and how to fix it)."""

    DEFAULT_CSS = """
    TranscriptColumn {
        width: 1fr;
        border: round $primary-darken-2;
        padding: 0 1;
    }
    TranscriptColumn > .final.selected { background: $accent 40%; }
    TranscriptColumn > .problem { color: $error; margin-bottom: 1; }
    TranscriptColumn > .problem.-empty { display: none; }
    """

    def __init__(self, title: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.border_title = title
        self.finals: list[Final] = []
        self._problem = Static("", classes="problem -empty")
        self._partial = Static("", classes="partial")

    def compose(self):
        yield self._problem
        yield self._partial

    def add_final(self, final: Final) -> None:
        """The kept text of an utterance; its Partial goes away (an empty Final only
        retires the Partial: everything it heard was non-speech)."""
        following = self._following()
        self.show_partial(None)
        if final.text:
            self.finals.append(final)
            self.mount(FinalLine(final), before=self._partial)
        if following:
            self.call_after_refresh(self.scroll_end, animate=False)

    def show_partial(self, partial: Partial | None) -> None:
        """The utterance in progress: committed text plain, tentative text dim."""
        following = self._following()
        if partial is None:
            self._partial.update("")
        else:
            self._partial.update(Content.assemble(partial.committed, " " if partial.committed else "",
                                                  (partial.tentative, "dim italic")))
        if following:
            self.call_after_refresh(self.scroll_end, animate=False)

    def show_problem(self, problem: str) -> None:
        self._problem.update(problem)
        self._problem.set_class(not problem, "-empty")

    def clear(self) -> None:
        self.finals.clear()
        for line in self.query(FinalLine):
            line.remove()
        self._partial.update("")

    def _following(self) -> bool:
        return self.scroll_offset.y >= self.max_scroll_y
