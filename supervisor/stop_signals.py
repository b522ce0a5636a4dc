"""SIGINT, SIGTERM and SIGHUP, as the commands that run a session take them: Ctrl-C, a kill
of the session, a closed terminal.

Why from before the session starts until it has closed: a signal that comes while the
actors start (the rings made, nothing yet waiting for it) used to find Python's defaults,
so SIGTERM ended the process with its segments left behind and SIGINT cancelled a task that
never stopped the session. Taken from the start, it stops the session as soon as it is up.
Why until it has closed: a second Ctrl-C during the shutdown landed as KeyboardInterrupt in
the middle of it (actors left running, the last Final lost). And a process that got one
ignores any more on its way out, so a Ctrl-C more cannot kill it half way through its exit.
"""

from __future__ import annotations

import asyncio
import signal
import sys

#: What ends a session run from a terminal.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopSignals:
    """``with StopSignals(done):`` sets ``done`` on the first stop signal; a second one is
    told that the shutdown goes on. Enter it inside the running event loop."""

    def __init__(self, done: asyncio.Event) -> None:
        self.done = done
        self.received: list[int] = []

    def __enter__(self) -> StopSignals:
        loop = asyncio.get_running_loop()
        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, self._on_signal, signum)
        return self

    def __exit__(self, *exc) -> None:
        loop = asyncio.get_running_loop()
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)
            if self.received:
                signal.signal(signum, signal.SIG_IGN)

    def _on_signal(self, signum: int) -> None:
        self.received.append(signum)
        if len(self.received) == 2:
            print("earwig: stopping: finishing what was said first (an actor that stops answering is ended "
                  "after 10 s)", file=sys.stderr, flush=True)
        self.done.set()
