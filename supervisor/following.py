"""How a command-line client follows a session it runs (``earwig meter``, ``earwig dictate``,
``earwig profile``): every message the supervisor publishes handed to the client until the
run is over, then what came during the shutdown.

Why one loop for all of them: they end for the same reasons, and each had written them
again. A run is over when the user stops it (Ctrl-C, SIGTERM, a closed terminal:
``StopSignals`` sets ``stop``), when ``seconds`` have passed, when an actor fails for good
(it said why: the client raises it as one line), or, when every source is a replayed file,
once the mel actor has read them all and every utterance's end has a Final
(``RunEnd``). The decision is a small class, tested message by message; the loop only waits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from earwig.messages import ActorFailed, AnyMessage, Final, SpeechEnd
from earwig.supervisor.supervisor import Supervisor

#: How often ``follow`` looks at the clock and the mel actor when no message comes.
POLL_S = 0.25


class RunEnd:
    """Feed it every message (``heard``); ``over`` says whether the run is done."""

    def __init__(self, replays_only: bool, finals: bool = True) -> None:
        """``replays_only``: every source is a file, so the run ends with them; ``finals``:
        a final actor answers every utterance (``earwig meter`` runs none)."""
        self.replays_only, self._finals = replays_only, finals
        #: The fatal failure that ended the run, if one did.
        self.failure: ActorFailed | None = None
        #: Utterances ended (source, end) that no Final ends at yet (an echo split's last
        #: part ends where its utterance did).
        self._owed: set[tuple[str, int]] = set()

    def heard(self, message: AnyMessage) -> None:
        if isinstance(message, ActorFailed) and message.fatal:
            self.failure = self.failure or message
        elif isinstance(message, SpeechEnd) and self._finals:
            self._owed.add((message.source, message.end))
        elif isinstance(message, Final):
            self._owed.discard((message.source, message.end))

    def over(self, replays_read: bool) -> bool:
        """``replays_read``: the mel actor has read every file to its end, and everything it
        said has been published."""
        return self.failure is not None or (self.replays_only and replays_read and not self._owed)


async def follow(supervisor: Supervisor, messages: asyncio.Queue[AnyMessage], handle: Callable[[AnyMessage], None],
                 stop: asyncio.Event, end: RunEnd, seconds: float = 0.0,
                 tick: Callable[[], None] | None = None, tick_every_s: float = POLL_S) -> None:
    """``handle`` each of ``messages`` (``supervisor.subscribe()``) until the run is over;
    ``tick`` every ``tick_every_s`` meanwhile (a meter's line, a profile's sample)."""
    started = next_tick = time.monotonic()
    while not stop.is_set() and not end.over(supervisor.finished("mel")):
        now = time.monotonic()
        if seconds and now - started >= seconds:
            return
        wait = min(POLL_S, max(0.0, next_tick - now)) if tick is not None else POLL_S
        try:
            message = await asyncio.wait_for(messages.get(), wait)
        except asyncio.TimeoutError:
            message = None
        if message is not None:
            end.heard(message)
            handle(message)
        if tick is not None and time.monotonic() >= next_tick:
            tick()
            next_tick += tick_every_s


def drain(messages: asyncio.Queue[AnyMessage], handle: Callable[[AnyMessage], None]) -> None:
    """What the supervisor published while it shut down (the Finals it still owed)."""
    while not messages.empty():
        handle(messages.get_nowait())
