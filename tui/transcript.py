"""One source's text: its Finals, each with its start time, and the current Partial below.

Why one widget that renders lines, as Textual's ``Log`` does, and not a widget per Final: a
meeting of a few hours brings thousands of Finals, and every mounted widget costs memory,
styles and layout time for the whole session. Here a Final is wrapped once into strips at
the column's width (again only when the width changes or it is selected), ``render_line``
hands Textual the rows that are on screen, and the column keeps at most ``max_finals``
Finals (``monitor.column_finals``): older ones leave the screen, a quarter at a time, never
the session (the monitor's transcript and the session log keep all of them).

The Partial is the last rows, rewrapped on each update: it changes four times a second while
the speaker talks; the Finals above it only grow. The column follows the newest text unless
the user scrolled back to read, and stays where they left it until they scroll down again.
A click on a Final, or up/down while the column has the focus, selects it (for the copy,
play and retry keys). A line read again (a retry) takes its new text, marked ``REVISED``.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from earwig.export import clock
from earwig.messages import Final, Partial

#: Before a line's text once a retry has revised it.
REVISED = "↻ "


class TranscriptColumn(ScrollView, can_focus=True):
    """``add_final`` and ``show_partial`` with a source's messages; ``clear`` empties it;
    ``show_problem`` says why the source gives no text (and how to fix it)."""

    DEFAULT_CSS = """
    TranscriptColumn {
        width: 1fr;
        border: round $primary-darken-2;
        padding: 0 1;
        overflow-x: hidden;
    }
    TranscriptColumn:focus { border: round $accent; }
    TranscriptColumn > .transcript--clock { text-style: dim; }
    TranscriptColumn > .transcript--selected { background: $accent 40%; }
    TranscriptColumn > .transcript--problem { color: $error; }
    TranscriptColumn > .transcript--tentative { text-style: dim italic; }
    TranscriptColumn > .transcript--revised { color: $accent; }
    """
    COMPONENT_CLASSES = {"transcript--clock", "transcript--selected", "transcript--problem",
                         "transcript--tentative", "transcript--revised"}
    BINDINGS = [Binding("up", "select(-1)", "Previous line", show=False),
                Binding("down", "select(1)", "Next line", show=False)]

    class Selected(Message):
        """The user selected a Final of this column (``final`` None: unselected it)."""

        def __init__(self, column: TranscriptColumn, final: Final | None) -> None:
            super().__init__()
            self.column = column
            self.final = final

    def __init__(self, title: str, max_finals: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.border_title = title
        self.max_finals = max_finals
        #: The Finals on screen, oldest first, and the rows each is wrapped into.
        self.finals: list[Final] = []
        self._wrapped: list[list[Strip]] = []
        #: Every Final's rows in order, each with the index of its Final: what render_line reads.
        self._rows: list[tuple[int, Strip]] = []
        self._starts: list[int] = []
        self.selected: int | None = None
        self._problem = ""
        self._partial: Partial | None = None
        self._problem_rows: list[Strip] = []
        self._partial_rows: list[Strip] = []
        self._width = 0
        #: Whether the column shows its newest text: it scrolls along with new text until
        #: the user scrolls back, and again once they scroll to the end.
        self._follows = True

    # --- what the monitor shows ------------------------------------------------------------

    def add_final(self, final: Final) -> None:
        """The kept text of an utterance; its Partial goes away (an empty Final only
        retires the Partial: everything it heard was non-speech)."""
        self._partial = None
        self._partial_rows = []
        if final.text:
            self.finals.append(final)
            self._wrapped.append(self._wrap_final(len(self.finals) - 1))
            self._append_rows(len(self.finals) - 1)
            if len(self.finals) > self.max_finals:
                self._drop_oldest(len(self.finals) - self.max_finals + self.max_finals // 4)
        self._changed()

    def show_partial(self, partial: Partial | None) -> None:
        """The utterance in progress: committed text plain, tentative text dim."""
        self._partial = partial
        self._partial_rows = self._wrap_partial()
        self._changed()

    def show_problem(self, problem: str) -> None:
        self._problem = problem
        self._problem_rows = self._wrap_problem()
        self._changed()

    def clear(self) -> None:
        self.finals.clear()
        self._wrapped.clear()
        self._rebuild_rows()
        self._partial = None
        self._partial_rows = []
        self._select(None)
        self._follows = True
        self._changed()

    def revise(self, final: Final) -> bool:
        """A retry's text for a line on screen (the same span): it takes the line's place;
        False where the line is no longer on screen."""
        index = self._index_of(final)
        if index is None:
            return False
        self.finals[index] = final
        self._rewrap(index)
        self.refresh()
        return True

    def show_line(self, final: Final) -> bool:
        """Select a line on screen and scroll to it (a search found it); False where it has
        left the screen."""
        index = self._index_of(final)
        if index is None:
            return False
        self._select(index)
        self.post_message(self.Selected(self, self.selected_final))
        self._scroll_to_selected()
        return True

    def _index_of(self, final: Final) -> int | None:
        return next((i for i, shown in enumerate(self.finals)
                     if (shown.start, shown.end) == (final.start, final.end)), None)

    @property
    def selected_final(self) -> Final | None:
        return None if self.selected is None else self.finals[self.selected]

    def unselect(self) -> None:
        """Another column's Final was selected: this column's selection goes."""
        self._select(None)

    # --- the user --------------------------------------------------------------------------

    def on_click(self, event) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        index = self._final_at(offset.y + self.scroll_offset.y)
        if index is not None:
            self._select(None if index == self.selected else index)
            self.post_message(self.Selected(self, self.selected_final))

    def action_select(self, step: int) -> None:
        """The previous or next Final (from none: the newest), kept in view."""
        if not self.finals:
            return
        index = len(self.finals) - 1 if self.selected is None else self.selected + step
        self._select(max(0, min(len(self.finals) - 1, index)))
        self.post_message(self.Selected(self, self.selected_final))
        self._scroll_to_selected()

    def _scroll_to_selected(self) -> None:
        start = len(self._problem_rows) + self._starts[self.selected]
        self.scroll_to_region(Region(0, start, 1, len(self._wrapped[self.selected])),
                              animate=False, immediate=True)

    # --- rows --------------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        row = self.scroll_offset.y + y
        width = self.scrollable_content_region.width
        strip = self._row(row)
        return (strip or Strip.blank(width, self.rich_style)).crop_extend(0, width, self.rich_style)

    def on_resize(self) -> None:
        width = self.scrollable_content_region.width
        if width != self._width:
            self._width = width
            self._wrapped = [self._wrap_final(index) for index in range(len(self.finals))]
            self._rebuild_rows()
            self._problem_rows = self._wrap_problem()
            self._partial_rows = self._wrap_partial()
            self._changed()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        if self.is_mounted:  # the colours changed: every row is wrapped again
            self._width = 0
            self.call_after_refresh(self.on_resize)

    def _row(self, row: int) -> Strip | None:
        if row < len(self._problem_rows):
            return self._problem_rows[row]
        row -= len(self._problem_rows)
        if row < len(self._rows):
            return self._rows[row][1]
        row -= len(self._rows)
        return self._partial_rows[row] if row < len(self._partial_rows) else None

    def _final_at(self, row: int) -> int | None:
        row -= len(self._problem_rows)
        return self._rows[row][0] if 0 <= row < len(self._rows) else None

    def _wrap(self, text: Text, fill: bool = False) -> list[Strip]:
        """``text`` in rows of the column's width, on the column's own style (under the
        text's); ``fill`` carries the text's style to the row's end (a selected Final)."""
        if self._width <= 0:
            return []
        console = self.app.console
        base = self.rich_style + text.style if fill else self.rich_style
        strips = [Strip(line.render(console), line.cell_len).apply_style(base)
                  for line in text.wrap(console, self._width)]
        return [strip.extend_cell_length(self._width, base) for strip in strips] if fill else strips

    def _style(self, component: str) -> Style:
        """A component's own style; the selection's is whole (its background is blended
        onto the column's), the others only change what they set."""
        return self.get_component_rich_style(f"transcript--{component}", partial=component != "selected")

    def _wrap_final(self, index: int) -> list[Strip]:
        final = self.finals[index]
        selected = index == self.selected
        text = Text.assemble((f"{clock(final.start)} ", self._style("clock")),
                             (REVISED if final.revised else "", self._style("revised")), final.text,
                             style=self._style("selected") if selected else "")
        return self._wrap(text, fill=selected)

    def _wrap_partial(self) -> list[Strip]:
        partial = self._partial
        if partial is None or not (partial.committed or partial.tentative):
            return []
        return self._wrap(Text.assemble(partial.committed, " " if partial.committed else "",
                                        (partial.tentative, self._style("tentative"))))

    def _wrap_problem(self) -> list[Strip]:
        if not self._problem:
            return []
        return [*self._wrap(Text.assemble((self._problem, self._style("problem")))),
                Strip.blank(self._width, self.rich_style)]

    def _append_rows(self, index: int) -> None:
        self._starts.append(len(self._rows))
        self._rows.extend((index, strip) for strip in self._wrapped[index])

    def _rebuild_rows(self) -> None:
        self._rows, self._starts = [], []
        for index in range(len(self.finals)):
            self._append_rows(index)

    def _drop_oldest(self, count: int) -> None:
        """The oldest ``count`` Finals leave; a reader scrolled back keeps their place."""
        rows = sum(len(wrapped) for wrapped in self._wrapped[:count])
        del self.finals[:count], self._wrapped[:count]
        if self.selected is not None:
            self.selected = self.selected - count if self.selected >= count else None
        self._rebuild_rows()
        if not self._follows:
            self.scroll_to(y=max(0, self.scroll_offset.y - rows), animate=False, immediate=True, force=True)

    def _select(self, index: int | None) -> None:
        before, self.selected = self.selected, index
        for changed in {before, index} - {None}:
            self._rewrap(changed)
        self.refresh()

    def _rewrap(self, index: int) -> None:
        """Wrap one Final again (selected, unselected, revised); the rows after it move
        where its row count changed."""
        rows = len(self._wrapped[index])
        self._wrapped[index] = self._wrap_final(index)
        start = self._starts[index]
        self._rows[start:start + rows] = [(index, strip) for strip in self._wrapped[index]]
        if len(self._wrapped[index]) != rows:
            self._rebuild_rows()
            self._changed()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._follows = new_value >= self.max_scroll_y

    def _changed(self) -> None:
        """The rows changed: the scroll range follows them, and the view too if it follows
        the newest text (after the refresh, which knows the new range)."""
        self.virtual_size = Size(self._width, len(self._problem_rows) + len(self._rows) + len(self._partial_rows))
        if self._follows:
            self.scroll_end(animate=False, x_axis=False)
        self.refresh()
