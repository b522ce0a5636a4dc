"""Dictated text into the window that had focus when dictation started, and into no other.

Why python-xlib for the focus: pynput already brings it, and X11 answers "which window has
the keyboard" directly. The top-level window is compared, not the focused widget's own
window, so a text field that moves focus inside its application still counts as the same.

Why xclip for the clipboard: an X selection needs an owner that answers paste requests
until another takes it; xclip forks one that does, so the actor need not serve it. A paste
is the exception: the previous clipboard goes back only once the application has fetched
the dictated text, which only the selection's owner sees, so the actor owns the selection
itself for that one paste (``PasteOffer``), however long the application takes to ask.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from earwig.errors import EarwigError

#: After ctrl+v, the longest wait for the application to fetch the text (one that ignores
#: ctrl+v never asks), and, once it has, how long it gets for the other forms of the same
#: paste that some ask for next (a browser asks for several), before the clipboard's
#: previous content is put back.
PASTE_FETCH_MOST_S = 10.0
PASTE_SETTLE_S = 0.3
#: The forms of text a paste may ask for.
TEXT_TARGETS = ("UTF8_STRING", "text/plain;charset=utf-8", "text/plain", "STRING", "TEXT")
XCLIP = ["xclip", "-selection", "clipboard"]


#: The window a dictation began in, where the desktop cannot say which one had the focus
#: (Wayland without a compositor IPC that names it).
FOCUS_UNKNOWN = -1
ON_THE_CLIPBOARD = "it is on the clipboard (paste it with ctrl+v)"


@dataclass(frozen=True)
class Outcome:
    """``held``: why the text was not typed (it is on the clipboard instead), or "" if it was."""

    held: str = ""


def why_held(window: int, focused_window: Callable[[], int], unchecked: bool = False) -> str:
    """Why text meant for ``window`` (focused when dictation began) must not be typed now,
    or "" when it may: the focus is still there, or, where nobody can tell, the user chose
    to type without the check (``unchecked``)."""
    if window == FOCUS_UNKNOWN:
        return "" if unchecked else \
            f"this desktop does not say which window has the focus, so the text was not typed: {ON_THE_CLIPBOARD}"
    if not window:
        return f"no window had the keyboard focus when dictation started, so the text was not typed: {ON_THE_CLIPBOARD}"
    if focused_window() != window:
        return f"the focus moved to another window, so the text was not typed: {ON_THE_CLIPBOARD}"
    return ""


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
        if held := why_held(window, self.focused_window):
            self.set_clipboard(text)
            return Outcome(held)
        if self._delivery == "paste":
            self._paste(text)
        else:
            self._keyboard.type(text)
        return Outcome()

    def _paste(self, text: str) -> None:
        from pynput.keyboard import Key

        previous = self.clipboard()
        offer = PasteOffer(text)
        with self._keyboard.pressed(Key.ctrl):
            self._keyboard.tap("v")
        if offer.fetched.wait(PASTE_FETCH_MOST_S):
            time.sleep(PASTE_SETTLE_S)
        self.set_clipboard(text if previous is None else previous)  # xclip takes the selection over
        offer.join()

    def clipboard(self) -> str | None:
        """The clipboard's text; None when it is empty or holds no text."""
        result = subprocess.run([*XCLIP, "-o"], capture_output=True, timeout=2)
        return result.stdout.decode("utf-8", "replace") if result.returncode == 0 else None

    def set_clipboard(self, text: str) -> None:
        # xclip's background child keeps serving the selection: no pipes for it to hold open.
        subprocess.run([*XCLIP, "-i"], input=text.encode(), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=2, check=True)


class PasteOffer(threading.Thread):
    """Owns the clipboard holding ``text`` on a connection of its own, answers paste requests,
    and sets ``fetched`` when an application has taken the text; it ends when another owner
    takes the clipboard over."""

    def __init__(self, text: str) -> None:
        from Xlib import X, display

        super().__init__(daemon=True, name="paste-offer")
        self.fetched = threading.Event()
        self._text = text
        self._display = display.Display()
        atom = self._display.intern_atom
        self._clipboard, self._targets, self._utf8 = atom("CLIPBOARD"), atom("TARGETS"), atom("UTF8_STRING")
        self._text_targets = {atom(name) for name in TEXT_TARGETS}
        self._window = self._display.screen().root.create_window(0, 0, 1, 1, 0, X.CopyFromParent)
        self._window.set_selection_owner(self._clipboard, X.CurrentTime)
        self._display.sync()
        self.start()

    def run(self) -> None:
        from Xlib import X

        try:
            while (event := self._display.next_event()).type != X.SelectionClear:
                if event.type == X.SelectionRequest:
                    self._answer(event)
        finally:
            self._display.close()

    def _answer(self, request) -> None:
        from Xlib import X, Xatom
        from Xlib.protocol import event

        target, prop = request.target, request.property or request.target
        if target == self._targets:
            request.requestor.change_property(prop, Xatom.ATOM, 32, [self._targets, *self._text_targets])
        elif target in self._text_targets:
            if target == Xatom.STRING:  # Latin-1, by the protocol
                request.requestor.change_property(prop, Xatom.STRING, 8, self._text.encode("latin-1", "replace"))
            else:
                request.requestor.change_property(prop, self._utf8, 8, self._text.encode())
        else:
            prop = X.NONE  # a form it does not hold: refused
        request.requestor.send_event(event.SelectionNotify(
            time=request.time, requestor=request.requestor, selection=request.selection, target=target,
            property=prop))
        self._display.flush()
        if prop != X.NONE and target != self._targets:
            self.fetched.set()
