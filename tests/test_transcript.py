"""The transcript column (tui/transcript.py) in a real Textual app: it renders lines, stays
one widget however many Finals come, keeps at most its bound, follows the newest text unless
the user scrolled back, and selects a Final by click or keys."""

from __future__ import annotations

import asyncio

import msgspec
import pytest
from textual.app import App

from earwig.messages import Final, Partial
from earwig.tui.transcript import REVISED, TranscriptColumn

pytestmark = pytest.mark.pure

SECOND = 16_000


def final(number: int, text: str | None = None) -> Final:
    return Final(source="mic", start=number * SECOND, end=number * SECOND + SECOND // 2, language="en",
                 text=text or f"sentence number {number} about the weather and the trains today")


class ColumnApp(App):
    def __init__(self, max_finals: int = 2000) -> None:
        super().__init__()
        self.column = TranscriptColumn("Mic", max_finals=max_finals)
        self.selections: list[Final | None] = []

    def compose(self):
        yield self.column

    def on_transcript_column_selected(self, event: TranscriptColumn.Selected) -> None:
        self.selections.append(event.final)


def screen_text(column: TranscriptColumn) -> list[str]:
    return [column.render_line(y).text.rstrip() for y in range(column.scrollable_content_region.height)]


def test_a_thousand_finals_are_one_widget_bounded_and_the_newest_on_screen():
    async def run() -> None:
        app = ColumnApp(max_finals=400)
        async with app.run_test(size=(60, 20)) as pilot:
            widgets = len(app.query("*"))
            for number in range(1000):
                app.column.add_final(final(number))
            await pilot.pause()
            assert len(app.query("*")) == widgets  # no widget per Final
            assert 300 <= len(app.column.finals) <= 400  # the oldest left, a quarter at a time
            assert app.column.finals[-1].text.startswith("sentence number 999 ")
            shown = " ".join(screen_text(app.column))
            assert "trains today" in shown.split("16:39")[-1]  # 999 s: the last Final, all of it
            assert "sentence number 999" in shown
    asyncio.run(run())


def test_rows_wrap_to_the_width_and_again_when_it_changes():
    async def run() -> None:
        app = ColumnApp()
        async with app.run_test(size=(40, 20)) as pilot:
            app.column.add_final(final(3))
            await pilot.pause()
            narrow = [line for line in screen_text(app.column) if line]
            assert len(narrow) >= 2 and narrow[0].startswith("00:03 sentence")
            assert all(len(line) <= app.column.scrollable_content_region.width for line in narrow)
            await pilot.resize_terminal(120, 20)
            await pilot.pause()
            wide = [line for line in screen_text(app.column) if line]
            assert wide == [" ".join(narrow)]
    asyncio.run(run())


def test_the_partial_is_below_the_finals_and_goes_when_its_final_comes():
    async def run() -> None:
        app = ColumnApp()
        async with app.run_test(size=(80, 10)) as pilot:
            app.column.add_final(final(1, "first words"))
            app.column.show_partial(Partial(source="mic", start=5 * SECOND, end=6 * SECOND,
                                            committed="second", tentative="word maybe"))
            await pilot.pause()
            assert screen_text(app.column)[:2] == ["00:01 first words", "second word maybe"]
            tentative = [s for s in app.column.render_line(1) if "maybe" in s.text]
            assert tentative and tentative[0].style.italic
            app.column.add_final(final(5, "second words"))
            await pilot.pause()
            assert screen_text(app.column)[:3] == ["00:01 first words", "00:05 second words", ""]
    asyncio.run(run())


def test_scrolled_back_it_stays_while_new_finals_come_and_follows_again_at_the_end():
    async def run() -> None:
        app = ColumnApp()
        async with app.run_test(size=(80, 10)) as pilot:
            for number in range(30):
                app.column.add_final(final(number, f"line {number}"))
            await pilot.pause()
            assert screen_text(app.column)[-1] == "00:29 line 29"
            app.column.scroll_home(animate=False, immediate=True)
            app.column.add_final(final(30, "line 30"))
            await pilot.pause()
            assert screen_text(app.column)[0] == "00:00 line 0"  # where the reader left it
            app.column.scroll_end(animate=False, immediate=True)
            app.column.add_final(final(31, "line 31"))
            await pilot.pause()
            assert screen_text(app.column)[-1] == "00:31 line 31"
    asyncio.run(run())


def test_a_click_or_the_arrow_keys_select_a_final_and_it_is_drawn_selected():
    async def run() -> None:
        app = ColumnApp()
        async with app.run_test(size=(30, 12)) as pilot:
            app.column.add_final(final(1, "the first line is long enough to wrap twice"))
            app.column.add_final(final(2, "second"))
            app.column.add_final(final(3, "third"))
            await pilot.pause()
            rows = screen_text(app.column)
            second_row = rows.index("00:02 second")
            # A click on the first Final's second row (the border is the widget's row 0).
            await pilot.click(TranscriptColumn, offset=(3, 2))
            assert app.selections == [app.column.finals[0]]
            assert app.column.selected_final is app.column.finals[0]
            background = {s.style.bgcolor for s in app.column.render_line(1) if s.text.strip()}
            plain = {s.style.bgcolor for s in app.column.render_line(second_row) if s.text.strip()}
            assert len(background) == 1 and background != plain
            await pilot.press("down")
            assert app.column.selected_final.text == "second"
            await pilot.press("down", "down")  # the last stays selected
            assert app.column.selected_final.text == "third"
            await pilot.press("up")
            assert app.column.selected_final.text == "second"
            await pilot.click(TranscriptColumn, offset=(3, 1 + second_row))  # again: unselected
            assert app.column.selected_final is None and app.selections[-1] is None
            app.column.clear()
            await pilot.pause()
            assert not app.column.finals and not any(screen_text(app.column))
            await pilot.press("up")  # nothing to select
            assert app.column.selected_final is None
    asyncio.run(run())


def test_a_problem_is_above_the_text_in_its_own_colour():
    async def run() -> None:
        app = ColumnApp()
        async with app.run_test(size=(80, 10)) as pilot:
            app.column.add_final(final(1, "words"))
            app.column.show_problem("No mic audio: no server.\nFix: start it.")
            await pilot.pause()
            assert screen_text(app.column)[:4] == ["No mic audio: no server.", "Fix: start it.", "", "00:01 words"]
            problem = [s for s in app.column.render_line(0) if s.text.strip()]
            words = [s for s in app.column.render_line(3) if "words" in s.text]
            assert problem[0].style.color != words[0].style.color
            app.column.show_problem("")
            await pilot.pause()
            assert screen_text(app.column)[0] == "00:01 words"
    asyncio.run(run())


def test_a_reader_scrolled_back_keeps_their_line_when_the_oldest_finals_leave():
    async def run() -> None:
        app = ColumnApp(max_finals=40)
        async with app.run_test(size=(80, 10)) as pilot:
            for number in range(40):
                app.column.add_final(final(number, f"line {number}"))
            await pilot.pause()
            app.column.scroll_to(y=20, animate=False, immediate=True)
            await pilot.pause()
            assert screen_text(app.column)[0] == "00:20 line 20"
            for number in range(40, 45):  # past the bound: the oldest eleven leave
                app.column.add_final(final(number, f"line {number}"))
            await pilot.pause()
            assert app.column.finals[0].text == "line 11"
            assert screen_text(app.column)[0] == "00:20 line 20"
    asyncio.run(run())


def test_a_revised_line_takes_its_place_with_a_mark_and_a_search_can_select_a_line():
    async def run() -> None:
        app = ColumnApp()
        async with app.run_test(size=(40, 12)) as pilot:
            for number in (1, 2, 3):
                app.column.add_final(final(number, f"line {number}"))
            await pilot.pause()
            assert app.column.show_line(app.column.finals[1])
            await pilot.pause()
            assert app.column.selected_final.text == "line 2" and app.selections[-1].text == "line 2"
            revised = msgspec.structs.replace(final(2, "line two, read again and long enough to wrap"), revised=True)
            assert app.column.revise(revised)
            await pilot.pause()
            assert [f.text for f in app.column.finals][1] == revised.text
            rows = screen_text(app.column)
            assert rows[1].startswith(f"00:02 {REVISED}line two") and rows[3] == "00:03 line 3"  # wrapped: rows moved
            assert not app.column.revise(final(9, "never shown"))
            assert not app.column.show_line(final(9, "never shown"))
    asyncio.run(run())
