"""Which desktop dictated text goes to, decided from what the session has, not guessed.

Why Wayland first when both are there: in a Wayland session ``DISPLAY`` usually points at
XWayland, whose keyboard and focus reach only the X applications in it; native windows
would never see the text. So a session with ``WAYLAND_DISPLAY`` (or ``XDG_SESSION_TYPE``
wayland) takes the Wayland path, and an X11 session keeps pynput and Xlib.

What Wayland allows: no application may read another's keys, so the hotkey is read from
the keyboards themselves where the user may (``dictation_evdev``: the ``input`` group), and
everywhere a key bound in the compositor can run ``earwig ctl toggle`` (or start/stop for
hold-to-talk). wtype types through the virtual-keyboard protocol (wlroots compositors: sway,
Hyprland, river, labwc; KDE's KWin and GNOME's Mutter do not offer it, and a compositor is
asked rather than recognised by name); wl-clipboard holds the text when it is not typed,
and where nothing can type it always is. Which window has the focus only the compositor
knows: sway and Hyprland say so over their IPC; where none does (GNOME, KDE), typing blind could land in a window that took
the focus while the user spoke, so the text is held on the clipboard unless the user opts
into typing without the check (``dictation.type_without_focus_check``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

WAYLAND_TOOLS = {"wtype": "wtype", "wl-copy": "wl-clipboard", "wl-paste": "wl-clipboard"}
#: The compositors whose IPC names the focused window: the tool that asks, and the
#: variable that says this session runs that compositor.
FOCUS_IPC = {"sway": ("swaymsg", "SWAYSOCK"), "hyprland": ("hyprctl", "HYPRLAND_INSTANCE_SIGNATURE")}
CTL_FIX = ("drive dictation with `earwig ctl toggle` (bind that command to a key in your desktop's "
           "settings: README, \"Dictation on Wayland\")")


@dataclass(frozen=True)
class DesktopChoice:
    """``kind``: "x11", "wayland", or "" (none: the text is printed, not typed). ``focus``:
    who names the focused window ("x11", "sway", "hyprland"; "" where nobody can).
    ``hotkey``: who reads the global hotkey ("pynput" on X11, "evdev" on Wayland; "": none
    can, ``earwig ctl`` drives dictation). ``problem``: what does not work here and its
    fix, said once at start ("" when everything does). ``types``: text can be typed into
    the desktop's windows (a Wayland compositor without the virtual-keyboard protocol has
    it held on the clipboard instead)."""

    kind: Literal["x11", "wayland", ""]
    focus: str = ""
    hotkey: Literal["pynput", "evdev", ""] = ""
    problem: str = ""
    types: bool = True

    def typing(self) -> str:
        """How the text gets into the window, in a word, for the monitor's status bar."""
        if self.kind == "x11":
            return "pynput"
        return "wtype" if self.kind == "wayland" and self.types else "clipboard" if self.kind else "printed"

    def describe(self) -> str:
        """One line for ``earwig devices`` and the daemon's start: how text gets typed."""
        if self.kind == "x11":
            return "X11: typed with pynput, focus from the X server, hotkey read by pynput"
        if self.kind == "wayland":
            hotkey = "read from the keyboards (evdev)" if self.hotkey else "bind `earwig ctl toggle` in the compositor"
            if not self.types:
                return f"Wayland: the text is held on the clipboard (no virtual keyboard to type with), hotkey: {hotkey}"
            focus = f"focus from {self.focus}'s IPC" if self.focus else \
                "the focused window cannot be known here: the text is held on the clipboard"
            return f"Wayland: typed with wtype, {focus}, hotkey: {hotkey}"
        return "no desktop: the text is printed, not typed"


@dataclass(frozen=True)
class WaylandProbes:
    """What a Wayland session is asked, each only where the answer matters: why the
    keyboards cannot be read for the hotkey (``dictation_evdev.hotkey_problem``), and
    whether the compositor offers the virtual-keyboard protocol wtype types through
    (``dictation_wayland.offers_virtual_keyboard``)."""

    keyboard_problem: Callable[[], str | None]
    virtual_keyboard: Callable[[], bool]


def choose_desktop(env: Mapping[str, str], which: Callable[[str], str | None],
                   x_display_problem: Callable[[], str | None], wayland: WaylandProbes,
                   unchecked_focus: bool = False) -> DesktopChoice:
    """The session's desktop. ``which``: ``shutil.which``; ``x_display_problem``: why the X
    display cannot be used (it is only asked in an X11 session: it connects); ``wayland``:
    what a Wayland session is asked once its tools are there."""
    if env.get("WAYLAND_DISPLAY") or env.get("XDG_SESSION_TYPE") == "wayland":
        return _wayland(env, which, wayland, unchecked_focus)
    if env.get("DISPLAY"):
        problem = x_display_problem()
        if problem is None:
            return DesktopChoice("x11", focus="x11", hotkey="pynput")
        return DesktopChoice("", problem=f"{problem}: no global hotkey, and the text is printed here, not typed; "
                                         f"{CTL_FIX}")
    return DesktopChoice("", problem="there is no X display or Wayland session (neither DISPLAY nor WAYLAND_DISPLAY "
                                     f"is set): no global hotkey, and the text is printed here, not typed; {CTL_FIX}")


def session_desktop(hotkey: str, unchecked_focus: bool = False) -> DesktopChoice:
    """This session's desktop, asked of the real environment, display and tools."""
    import os
    import shutil

    from earwig.actors.dictation_evdev import hotkey_problem
    from earwig.actors.dictation_keys import display_problem
    from earwig.actors.dictation_wayland import offers_virtual_keyboard

    return choose_desktop(os.environ, shutil.which, display_problem,
                          WaylandProbes(lambda: hotkey_problem(hotkey), offers_virtual_keyboard), unchecked_focus)


def _wayland(env: Mapping[str, str], which: Callable[[str], str | None], probes: WaylandProbes,
             unchecked_focus: bool) -> DesktopChoice:
    if not env.get("WAYLAND_DISPLAY"):
        return DesktopChoice("", problem="the session is Wayland but WAYLAND_DISPLAY is not set, so no window can "
                                         "be reached: the text is printed here, not typed (run earwig from the "
                                         f"desktop session); {CTL_FIX}")
    missing = sorted({package for tool, package in WAYLAND_TOOLS.items() if which(tool) is None})
    if missing:
        return DesktopChoice("", problem=f"typing on Wayland needs {' and '.join(missing)}, which "
                                         f"{'is' if len(missing) == 1 else 'are'} not installed: the text is printed "
                                         f"here, not typed (install: sudo apt-get install {' '.join(missing)})")
    focus = next((name for name, (tool, variable) in FOCUS_IPC.items() if env.get(variable) and which(tool)), "")
    keyboards = probes.keyboard_problem()
    notes = [] if keyboards is None else [f"dictation.hotkey cannot be read: {keyboards}; {CTL_FIX}"]
    types = probes.virtual_keyboard()
    if not types:
        notes.append("this compositor offers no virtual keyboard (GNOME and KDE do not), so wtype cannot type into "
                     "its windows: dictated text is held on the clipboard (paste it with ctrl+v)")
    elif not focus and not unchecked_focus:
        notes.append("this compositor does not say which window has the focus, so dictated text is held on the "
                     "clipboard (paste it with ctrl+v), or set dictation.type_without_focus_check = true to type it "
                     "into whatever window has the focus when it is ready")
    return DesktopChoice("wayland", focus=focus, hotkey="" if keyboards else "evdev", problem="; ".join(notes),
                         types=types)
