"""Dictated text into a Wayland window: the same promise as on X11 (``dictation_delivery``),
typed only into the window that had the focus when dictation started.

Why wtype: it types through the virtual-keyboard protocol, which the wlroots compositors
(sway, Hyprland, river, labwc) offer to any client (KWin and Mutter do not: there wtype
fails, and the text goes to the clipboard), uploading a keymap for the characters it needs,
so accents and CJK arrive as they are (under a UTF-8 locale). Its first key was seen lost now and then
unless it waits a moment after connecting (``TYPE_SETTLE_MS``).

Why wl-clipboard: a Wayland selection, like an X one, needs an owner that answers paste
requests; ``wl-copy`` forks one. For a paste, ``wl-copy --paste-once --foreground`` owns the
clipboard for exactly one paste and exits when the application has taken the text: that
exit is the moment the previous clipboard can go back, as ``PasteOffer`` does on X11.

Which window has the focus: sway's ``get_tree`` marks the focused node; Hyprland's
``activewindow`` gives its address. Elsewhere the focus cannot be known (``FOCUS_UNKNOWN``).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator

from earwig.actors.dictation_delivery import (FOCUS_UNKNOWN, ON_THE_CLIPBOARD, PASTE_FETCH_MOST_S, PASTE_SETTLE_S,
                                              Outcome, why_held)
from earwig.errors import EarwigError

TYPE_SETTLE_MS = 20
#: The longest wait for wl-copy to hold the clipboard before the paste keystroke.
OFFER_MOST_S = 5.0
#: wtype and wl-clipboard read and write text in the locale's encoding.
UTF8 = {"LC_ALL": "C.UTF-8"}


def offers_virtual_keyboard() -> bool:
    """Whether the compositor offers the virtual-keyboard protocol: wtype binds it before
    anything else, so a wtype that only sleeps a millisecond fails where it is missing
    ("Compositor does not support the virtual keyboard protocol") and types nothing where
    it is there."""
    try:
        return subprocess.run(["wtype", "-s", "1"], capture_output=True, timeout=10,
                              env={**os.environ, **UTF8}).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class WaylandDesktop:
    """The Wayland session's focused window (through ``focus``'s IPC), keyboard and clipboard;
    with ``types`` False (no virtual keyboard), only the clipboard."""

    def __init__(self, delivery: str, focus: str, unchecked_focus: bool = False, types: bool = True) -> None:
        self._delivery, self._focus, self._unchecked, self._types = delivery, focus, unchecked_focus, types
        self._env = {**os.environ, **UTF8}

    def focused_window(self) -> int:
        """The focused window's id (0: none has the focus; ``FOCUS_UNKNOWN``: nobody says)."""
        if self._focus == "sway":
            return _focused_node(json.loads(self._run("swaymsg", "-t", "get_tree", "-r")))
        if self._focus == "hyprland":
            active = json.loads(self._run("hyprctl", "activewindow", "-j") or "{}")
            return int(active["address"], 16) if active.get("address") else 0
        return FOCUS_UNKNOWN

    def deliver(self, text: str, window: int) -> Outcome:
        """Type or paste ``text`` if ``window`` still has the focus; else hold it on the clipboard."""
        if not text:
            return Outcome()
        if not self._types:
            self.set_clipboard(text)
            return Outcome(f"this compositor offers no virtual keyboard to type with: {ON_THE_CLIPBOARD}")
        if held := why_held(window, self.focused_window, self._unchecked):
            self.set_clipboard(text)
            return Outcome(held)
        if self._delivery == "paste":
            self._paste(text)
        else:
            self._run("wtype", "-s", str(TYPE_SETTLE_MS), "-", stdin=text)
        return Outcome()

    def _paste(self, text: str) -> None:
        previous = self.clipboard()
        self._run("wl-copy", "--clear")  # so that the offer below is known to be in place once a selection is
        offer = subprocess.Popen(["wl-copy", "--foreground", "--paste-once"], stdin=subprocess.PIPE,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=self._env)
        offer.stdin.write(text.encode())
        offer.stdin.close()
        try:
            self._until_offered(offer)
            self._run("wtype", "-s", str(TYPE_SETTLE_MS), "-M", "ctrl", "-k", "v", "-m", "ctrl")
            offer.wait(PASTE_FETCH_MOST_S)
            time.sleep(PASTE_SETTLE_S)
        except subprocess.TimeoutExpired:  # the application never asked for the text
            pass
        finally:
            if offer.poll() is None:
                offer.kill()
            offer.wait()
        self.set_clipboard(text if previous is None else previous)

    def _until_offered(self, offer: subprocess.Popen) -> None:
        """Until ``offer`` holds the clipboard: listing its types asks for no paste, so the
        one paste it serves is left for the application."""
        deadline = time.monotonic() + OFFER_MOST_S
        while subprocess.run(["wl-paste", "--list-types"], capture_output=True, timeout=5, env=self._env).returncode:
            if offer.poll() is not None or time.monotonic() > deadline:
                raise EarwigError("wl-copy could not take the clipboard", "check that the compositor is running")
            time.sleep(0.01)

    def clipboard(self) -> str | None:
        """The clipboard's text; None when it is empty or holds no text."""
        result = subprocess.run(["wl-paste", "--no-newline", "--type", "text"], capture_output=True, timeout=5,
                                env=self._env)
        return result.stdout.decode("utf-8", "replace") if result.returncode == 0 else None

    def set_clipboard(self, text: str) -> None:
        # wl-copy's background child keeps serving the selection: no pipes for it to hold open.
        subprocess.run(["wl-copy"], input=text.encode(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=5, check=True, env=self._env)

    def _run(self, *command: str, stdin: str | None = None) -> str:
        result = subprocess.run(command, input=None if stdin is None else stdin.encode(), capture_output=True,
                                timeout=30, env=self._env)
        if result.returncode != 0:
            said = result.stderr.decode("utf-8", "replace").strip().splitlines()
            raise EarwigError(f"{command[0]} failed ({said[-1] if said else f'exit {result.returncode}'})",
                              "check that the compositor is running and WAYLAND_DISPLAY points at it")
        return result.stdout.decode("utf-8", "replace")


def _focused_node(tree: dict) -> int:
    """The id of the focused window in sway's tree (0 when a workspace or nothing has it)."""
    return next((node["id"] for node in sway_nodes(tree) if node.get("focused")
                 and node.get("type") in ("con", "floating_con")), 0)


def sway_nodes(node: dict) -> Iterator[dict]:
    """Every node of a sway tree (``swaymsg -t get_tree``): outputs, workspaces, windows."""
    yield node
    for child in (*node.get("nodes", ()), *node.get("floating_nodes", ())):
        yield from sway_nodes(child)
