"""Dictated text into the window that had focus when dictation started, and into no other.

Why python-xlib for the focus: pynput already brings it, and X11 answers "which window has
the keyboard" directly. The top-level window is compared, not the focused widget's own
window, so a text field that moves focus inside its application still counts as the same.

Why xclip for the clipboard: an X selection needs an owner that answers paste requests
until another takes it; xclip forks one that does, so the actor need not serve it.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass

from earwig.errors import EarwigError

#: After ctrl+v, how long the application gets to fetch the text before the clipboard's
#: previous content is put back.
PASTE_SETTLE_S = 0.3
XCLIP = ["xclip", "-selection", "clipboard"]


@dataclass(frozen=True)
class Outcome:
    """``held``: why the text was not typed (it is on the clipboard instead), or "" if it was."""

    held: str = ""


class Desktop:
    """The X display: its focused window, its keyboard, its clipboard."""

    def __init__(self, delivery: str) -> None:
        from pynput.keyboard import Controller
        from Xlib import display

        if shutil.which("xclip") is None:
            raise EarwigError("xclip is not installed (dictation's clipboard needs it)",
                              "install it: sudo apt-get install xclip")
        self._display = display.Display()
        self._keyboard = Controller()
        self._delivery = delivery

    def focused_window(self) -> int:
        """The top-level window that has the keyboard focus (0: none)."""
        window = self._display.get_input_focus().focus
        if isinstance(window, int):  # X.NONE or X.PointerRoot
            return 0
        root = self._display.screen().root
        while True:
            parent = window.query_tree().parent
            if not parent or parent.id == root.id:
                return window.id
            window = parent

    def deliver(self, text: str, window: int) -> Outcome:
        """Type or paste ``text`` if ``window`` still has the focus; else hold it on the clipboard."""
        if not text:
            return Outcome()
        if not window:
            self.set_clipboard(text)
            return Outcome("no window had the keyboard focus when dictation started, so the text was not "
                           "typed: it is on the clipboard (paste it with ctrl+v)")
        if self.focused_window() != window:
            self.set_clipboard(text)
            return Outcome("the focus moved to another window, so the text was not typed: "
                           "it is on the clipboard (paste it with ctrl+v)")
        if self._delivery == "paste":
            self._paste(text)
        else:
            self._keyboard.type(text)
        return Outcome()

    def _paste(self, text: str) -> None:
        from pynput.keyboard import Key

        previous = self.clipboard()
        self.set_clipboard(text)
        with self._keyboard.pressed(Key.ctrl):
            self._keyboard.tap("v")
        time.sleep(PASTE_SETTLE_S)
        if previous is not None:
            self.set_clipboard(previous)

    def clipboard(self) -> str | None:
        """The clipboard's text; None when it is empty or holds no text."""
        result = subprocess.run([*XCLIP, "-o"], capture_output=True, timeout=2)
        return result.stdout.decode("utf-8", "replace") if result.returncode == 0 else None

    def set_clipboard(self, text: str) -> None:
        # xclip's background child keeps serving the selection: no pipes for it to hold open.
        subprocess.run([*XCLIP, "-i"], input=text.encode(), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=2, check=True)
