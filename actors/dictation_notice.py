"""A desktop notification when dictated text was not typed: it says why, and where the text is.

Why a notification: while dictating, the user looks at the application they speak into,
not at the terminal where ``earwig dictate`` says why the text was held; on a desktop that
cannot say which window has the focus (GNOME, KDE) that is every dictation. The
freedesktop Notifications interface is what GNOME, KDE, mako and dunst answer, on X11 and
Wayland alike; it is reached over the session bus with jeepney (D-Bus in pure Python: no
GLib, nothing to build).

Best effort by design: where no bus or no notification service answers (a bare session,
SSH), the line on stderr is the word, and nothing waits longer than ``REPLY_WAIT_S``.
"""

from __future__ import annotations

SUMMARY = "Dictation: the text was not typed"
#: The longest the dictation actor's delivery waits for the service's answer.
REPLY_WAIT_S = 2.0
#: Of the text, as much as a notification's body shows.
BODY_CHARS = 200
#: How long the notification stays up, in milliseconds (long enough to read it after speaking).
SHOWN_MS = 10_000


def notify_held(reason: str, text: str) -> bool:
    """Notify that ``text`` was held for ``reason`` (``dictation_delivery.why_held``'s
    sentence); False where nothing answered."""
    from jeepney import DBusAddress, new_method_call
    from jeepney.io.blocking import open_dbus_connection
    from jeepney.wrappers import DBusErrorResponse

    service = DBusAddress("/org/freedesktop/Notifications", bus_name="org.freedesktop.Notifications",
                          interface="org.freedesktop.Notifications")
    shown = text if len(text) <= BODY_CHARS else text[:BODY_CHARS - 1] + "…"
    body = f"{reason[:1].upper()}{reason[1:]}.\n\n{shown}"
    call = new_method_call(service, "Notify", "susssasa{sv}i",
                           ("earwig", 0, "audio-input-microphone", SUMMARY, body, [], {}, SHOWN_MS))
    try:
        with open_dbus_connection(bus="SESSION", auth_timeout=REPLY_WAIT_S) as connection:
            connection.send_and_get_reply(call, timeout=REPLY_WAIT_S)
    except (KeyError, ValueError, OSError, TimeoutError, DBusErrorResponse):  # no bus, or nobody shows them
        return False
    return True
