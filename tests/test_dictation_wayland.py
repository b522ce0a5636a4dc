"""Dictation on Wayland: which desktop a session has (decided from its environment and tools,
message by message), and end to end on a real compositor: a headless sway, real speech
through PulseAudio's fake microphone, `earwig dictate` driven by `earwig ctl` as a
compositor's key binding would, the text read back from a real Wayland window (foot), the
clipboard read back with wl-paste."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from earwig.actors.dictation_delivery import FOCUS_UNKNOWN, why_held
from earwig.actors.dictation_desktops import CTL_FIX, DesktopChoice, WaylandProbes, choose_desktop
from earwig.actors.dictation_evdev import hotkey_problem
from earwig.actors.dictation_wayland import offers_virtual_keyboard, sway_nodes
from earwig.profiling.harness import headless
from installed import require
from speech_text import spoken_sentences, word_error_rate
from test_dictation import Daemon, _until

EARWIG = [sys.executable, "-m", "earwig.cli"]
ALL_TOOLS = {"wtype", "wl-copy", "wl-paste", "swaymsg", "hyprctl"}


def _which(*missing: str):
    return lambda tool: f"/usr/bin/{tool}" if tool in ALL_TOOLS - set(missing) else None


def _no_x(*_):
    raise AssertionError("the X display was asked about in a Wayland session")


def _no_keyboard():
    return "no keyboard can be seen (/dev/input holds no input devices)"


def _probes(keyboard_problem=_no_keyboard, virtual_keyboard: bool = True) -> WaylandProbes:
    return WaylandProbes(keyboard_problem, lambda: virtual_keyboard)


def _not_asked():
    raise AssertionError("a Wayland session was asked about in an X11 session")


@pytest.mark.pure
@pytest.mark.parametrize("env, missing, kind, focus, says", [
    ({"WAYLAND_DISPLAY": "wayland-1", "SWAYSOCK": "/run/sway.sock", "DISPLAY": ":0"}, (), "wayland", "sway",
     "dictation.hotkey cannot be read: no keyboard can be seen (/dev/input holds no input devices); drive "
     "dictation with `earwig ctl toggle`"),
    ({"WAYLAND_DISPLAY": "wayland-1", "HYPRLAND_INSTANCE_SIGNATURE": "abc"}, (), "wayland", "hyprland", "earwig ctl"),
    ({"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}, (), "wayland", "",
     "dictation.type_without_focus_check = true"),
    ({"WAYLAND_DISPLAY": "wayland-1", "SWAYSOCK": "/run/sway.sock"}, ("swaymsg",), "wayland", "",
     "does not say which window has the focus"),
    ({"WAYLAND_DISPLAY": "wayland-1", "SWAYSOCK": "/run/sway.sock"}, ("wtype",), "", "",
     "typing on Wayland needs wtype, which is not installed: the text is printed here, not typed "
     "(install: sudo apt-get install wtype)"),
    ({"WAYLAND_DISPLAY": "wayland-1"}, ("wtype", "wl-paste"), "", "", "sudo apt-get install wl-clipboard wtype"),
    ({"XDG_SESSION_TYPE": "wayland", "DISPLAY": ":0"}, (), "", "", "WAYLAND_DISPLAY is not set"),
    ({}, (), "", "", "neither DISPLAY nor WAYLAND_DISPLAY is set"),
])
def test_a_wayland_session_takes_the_wayland_path_and_says_what_it_lacks(env, missing, kind, focus, says):
    choice = choose_desktop(env, _which(*missing), _no_x, _probes())
    assert (choice.kind, choice.focus, choice.hotkey) == (kind, focus, "")
    assert says in choice.problem, choice.problem


@pytest.mark.pure
def test_a_wayland_session_whose_keyboards_can_be_read_reads_the_hotkey_from_them():
    sway = choose_desktop({"WAYLAND_DISPLAY": "wayland-1", "SWAYSOCK": "/run/sway.sock"}, _which(), _no_x,
                          _probes(lambda: None))
    assert (sway.kind, sway.focus, sway.hotkey, sway.problem) == ("wayland", "sway", "evdev", "")
    assert sway.describe() == "Wayland: typed with wtype, focus from sway's IPC, hotkey: read from the keyboards (evdev)"
    assert sway.typing() == "wtype"
    gnome = choose_desktop({"WAYLAND_DISPLAY": "wayland-0"}, _which(), _no_x, _probes(lambda: None))
    assert gnome.hotkey == "evdev" and gnome.problem.startswith("this compositor does not say which window")
    unreadable = choose_desktop({"WAYLAND_DISPLAY": "wayland-0"}, _which("wtype"), _no_x, _probes(lambda: None))
    assert unreadable.kind == "" and unreadable.hotkey == ""  # no typing: no dictation actor to read keys for


@pytest.mark.pure
def test_a_compositor_without_a_virtual_keyboard_has_the_text_held_on_the_clipboard_and_says_so():
    kde = choose_desktop({"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}, _which(), _no_x,
                         _probes(lambda: None, virtual_keyboard=False))
    assert (kde.kind, kde.types, kde.hotkey) == ("wayland", False, "evdev")
    assert kde.problem == ("this compositor offers no virtual keyboard (GNOME and KDE do not), so wtype cannot type "
                           "into its windows: dictated text is held on the clipboard (paste it with ctrl+v)")
    assert kde.describe() == ("Wayland: the text is held on the clipboard (no virtual keyboard to type with), "
                              "hotkey: read from the keyboards (evdev)")
    assert kde.typing() == "clipboard"  # the monitor's status bar: "dictation ready (clipboard)"


@pytest.mark.pure
def test_an_x11_session_keeps_the_x_path_and_a_wayland_one_without_the_focus_check_types():
    assert choose_desktop({"DISPLAY": ":0"}, _which(), lambda: None, WaylandProbes(_not_asked, _not_asked)) == \
        DesktopChoice("x11", "x11", "pynput")
    unreachable = choose_desktop({"DISPLAY": ":9"}, _which(), lambda: "the X display :9 cannot be reached",
                                 WaylandProbes(_not_asked, _not_asked))
    assert unreachable.kind == "" and unreachable.problem.startswith("the X display :9 cannot be reached")
    unchecked = choose_desktop({"WAYLAND_DISPLAY": "wayland-0"}, _which(), _no_x, _probes(), unchecked_focus=True)
    assert unchecked.kind == "wayland" and "type_without_focus_check" not in unchecked.problem


@pytest.mark.pure
def test_text_is_typed_only_where_the_focus_is_known_to_be_where_it_began():
    focused = {"now": 7}
    assert why_held(7, lambda: focused["now"]) == ""
    focused["now"] = 8
    assert why_held(7, lambda: focused["now"]).startswith("the focus moved to another window")
    assert why_held(0, lambda: 0).startswith("no window had the keyboard focus")
    assert why_held(FOCUS_UNKNOWN, _no_x).startswith("this desktop does not say which window has the focus")
    assert why_held(FOCUS_UNKNOWN, _no_x, unchecked=True) == ""  # typed without asking, as the user chose


@pytest.mark.pure
def test_the_focused_window_is_found_in_swaymsgs_tree_and_a_focused_workspace_is_none():
    from earwig.actors.dictation_wayland import _focused_node

    window = {"id": 12, "type": "con", "app_id": "recv", "focused": True, "nodes": []}
    tree = {"id": 1, "type": "root", "nodes": [{"id": 3, "type": "output", "nodes": [
        {"id": 4, "type": "workspace", "nodes": [{"id": 11, "type": "con", "nodes": []}],
         "floating_nodes": [window]}]}]}
    assert _focused_node(tree) == 12 and [node["id"] for node in sway_nodes(tree)] == [1, 3, 4, 11, 12]
    window["focused"], tree["nodes"][0]["nodes"][0]["focused"] = False, True
    assert _focused_node(tree) == 0


@pytest.mark.pure
def test_without_a_session_bus_the_notification_is_given_up_at_once_and_the_text_stays_held(monkeypatch):
    from earwig.actors.dictation_notice import notify_held

    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    assert notify_held("the focus moved to another window", "some text") is False


# --- a real compositor --------------------------------------------------------------------

SAID = ["We will meet in the conference room after lunch on Friday.",
        "My brother is learning to play the piano this summer."]
#: A spoken word written with accents and CJK: the replacement puts them in the dictated text.
WRITTEN = {"piano": " piano (café, 日本) "}


@pytest.fixture(scope="module")
def sway():
    require("sway", "foot", "wtype", "wl-copy", "wl-paste", "espeak-ng")
    with headless.wayland_session() as session:
        yield session


@pytest.fixture(scope="module")
def sentences(tmp_path_factory) -> list[Path]:
    return spoken_sentences(tmp_path_factory.mktemp("said"), SAID)


@pytest.fixture(scope="module")
def notifications(sway):
    """What the desktop's notification service (mako, on a session bus of its own) shows."""
    require("dbus-daemon", "mako", "makoctl")
    with headless.notification_service(sway) as shown:
        yield shown


@pytest.fixture
def dictate(sway, pulse, tmp_path):
    started: list[Daemon] = []

    def start(*flags: str, env: dict[str, str] | None = None) -> Daemon:
        started.append(Daemon(tmp_path, *flags, env=env))
        started[-1].wait_for("earwig dictate: ready")
        return started[-1]
    yield start
    for daemon in started:
        if daemon.process.poll() is None:
            assert daemon.stop() == 0, daemon.err.read_text()


@pytest.fixture
def windows(sway):
    opened: list[headless.WaylandWindow] = []

    def open_window(name: str) -> headless.WaylandWindow:
        opened.append(headless.WaylandWindow(sway, name))
        return opened[-1]
    yield open_window
    for window in opened:
        window.close()


def _ctl(action: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([*EARWIG, "ctl", action], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _say(path: Path) -> None:
    subprocess.run(["paplay", "--device=micfeed", str(path)], check=True)


def _clipboard() -> str:
    return subprocess.run(["wl-paste", "--no-newline"], capture_output=True, text=True, timeout=10).stdout


@pytest.mark.service
def test_a_dictation_is_typed_into_the_focused_wayland_window_accents_intact_and_never_into_another(
        notifications, dictate, windows, sentences):
    devices = subprocess.run([*EARWIG, "devices"], capture_output=True, text=True, timeout=60)
    assert "Dictation: Wayland: typed with wtype, focus from sway's IPC" in devices.stdout, devices.stdout
    first, other = windows("first"), windows("other")
    daemon = dictate("--dictation-replacements", json.dumps(WRITTEN))
    said = daemon.err.read_text()
    assert "Wayland: typed with wtype, focus from sway's IPC" in said and "earwig ctl toggle" in said, said
    keyboards = hotkey_problem("<ctrl>+<alt>+<space>")  # CI: no /dev/input, so no keyboard to read
    if keyboards:
        assert [line for line in said.splitlines() if "dictation.hotkey" in line] == [
            f"earwig dictate: dictation.hotkey cannot be read: {keyboards}; {CTL_FIX}."], said
    else:
        assert "hotkey: read from the keyboards (evdev)" in said, said
    first.focus()
    assert _ctl("start").startswith("listening")
    _say(sentences[1])
    typed = _ctl("stop")
    assert typed.startswith("delivered"), typed
    _until(lambda: "日本" in first.text and first.text.rstrip().endswith("summer."), what="the text in the window")
    assert "(café, 日本)" in first.text and word_error_rate(SAID[1], first.text.replace(" (café, 日本)", "")) <= 0.1
    assert other.text == ""

    first.focus()
    assert _ctl("start").startswith("listening")
    _say(sentences[0])
    other.focus()  # the user moved to another window while speaking
    held = _ctl("stop")
    assert held.startswith("held: the focus moved to another window"), held
    assert word_error_rate(SAID[0], _clipboard()) <= 0.1, _clipboard()
    assert other.text == "" and "Friday" not in first.text
    [shown] = notifications()  # said where the user is looking, not only in the terminal
    assert shown["summary"] == "Dictation: the text was not typed", shown
    reason, text = shown["body"].split("\n\n")
    assert reason == "The focus moved to another window, so the text was not typed: it is on the clipboard (paste " \
                     "it with ctrl+v)." and text == _clipboard(), shown


@pytest.mark.service
def test_whether_wtype_can_type_is_asked_of_the_compositor_not_guessed_from_its_name(sway):
    assert offers_virtual_keyboard()  # sway: the virtual-keyboard protocol is there
    require("weston")
    with headless.weston_session():
        assert not offers_virtual_keyboard()
        devices = subprocess.run([*EARWIG, "devices"], capture_output=True, text=True, timeout=60)
    assert "Dictation: Wayland: the text is held on the clipboard (no virtual keyboard to type with)" in \
        devices.stdout, devices.stdout


@pytest.mark.service
def test_paste_on_wayland_puts_the_text_in_and_the_clipboard_back(dictate, windows, sentences):
    window = windows("pasted")
    subprocess.run(["wl-copy", "what was copied before"], check=True, timeout=10)
    dictate("--dictation-delivery", "paste")
    window.focus()
    assert _ctl("toggle").startswith("listening")
    _say(sentences[0])
    assert _ctl("toggle").startswith("delivered")
    _until(lambda: window.text.rstrip().endswith("Friday."), what="the pasted text in the window")
    assert word_error_rate(SAID[0], window.text) <= 0.1, window.text
    assert _until(lambda: _clipboard() == "what was copied before", what="the old clipboard back")


@pytest.mark.service
def test_without_wtype_it_is_one_line_naming_the_fix_and_ctl_still_dictates(dictate, sentences, tmp_path):
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("wl-copy", "wl-paste", "swaymsg"):
        (tools / tool).symlink_to(shutil.which(tool))
    daemon = dictate(env={**os.environ, "PATH": str(tools)})
    lines = [line for line in daemon.err.read_text().splitlines() if "wtype" in line]
    assert lines == ["earwig dictate: typing on Wayland needs wtype, which is not installed: the text is printed "
                     "here, not typed (install: sudo apt-get install wtype)."], daemon.err.read_text()
    assert _ctl("start").startswith("listening")
    _say(sentences[0])
    assert _ctl("stop").startswith("held: no desktop to type into")
    _until(lambda: "Friday" in daemon.out.read_text(), what="the text printed")
    assert word_error_rate(SAID[0], daemon.out.read_text()) <= 0.1
