"""The supervisor in a process of its own, driven by a client over one message pipe: how the
monitor's screen runs the pipeline.

Why: on two cores the final model's pass uses both, and a screen frame drawn meanwhile
stalls its whole parallel region (``bench monitor``: end of speech -> Final 1.22x slower
with the screen drawing in the supervisor's process). A client process can lower its own
priority (nice) without lowering the pipeline's: the supervisor's process is spawned first,
so it and every actor it spawns keep the normal priority, and the kernel gives them the
cores whenever they want them; the picture waits instead.

The pipe carries the actors' own msgspec messages: everything the supervisor publishes goes
to the client, and the client sends what the user asks for (``PauseSource``) and
``Shutdown``. Bulk data never crosses it: the client attaches the rings by name and reads
them itself. Either side dying ends the other cleanly: the supervisor sees the pipe end and
closes (actors stop, rings are unlinked); the client sees it end and unlinks whatever the
supervisor's process left behind.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import queue
import signal
import threading
from multiprocessing.connection import Connection
from pathlib import Path

from earwig.actors.runtime import ActorSpec, redirect_output, run_loop
from earwig.channel import Channel
from earwig.errors import EarwigError
from earwig.messages import ActorFailed, ActorReady, AnyMessage, Message, Shutdown, encode
from earwig.session.keeper import Keeping, SessionKeeper
from earwig.shm import Ring, RingSpec, segments
from earwig.supervisor.stop_signals import STOP_SIGNALS
from earwig.supervisor.supervisor import RestartPolicy, Supervisor

#: The name the supervisor's process goes by in ActorReady / ActorFailed and process lists.
SUPERVISOR = "supervisor"


# --- the supervisor's process ----------------------------------------------------------------


def serve(rings: list[RingSpec], actors: list[ActorSpec], log_path: str | None, keeping: Keeping,
          conn: Connection) -> None:
    """Process entry point (spawn target): run a Supervisor until the client says Shutdown
    or goes away. Ctrl-C, a kill of the session and a closed terminal reach the client's
    whole process group, this process too: the client decides (this process, ended by
    them, would lose the Finals still owed and leave its actors' rings)."""
    redirect_output(log_path)
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    run_loop(_serve(rings, actors, log_path, keeping, conn))


async def _serve(rings: list[RingSpec], actors: list[ActorSpec], log_path: str | None, keeping: Keeping,
                 conn: Connection) -> None:
    channel = Channel(conn)
    sender = _Sender(conn)
    try:
        async with Supervisor(rings, actors, log_path=log_path and Path(log_path),
                              keeper=SessionKeeper(keeping)) as supervisor:
            published = supervisor.subscribe()
            sender.put(ActorReady(actor=SUPERVISOR, pid=os.getpid()))
            forwarding = asyncio.create_task(_forward(published, sender))
            while (message := await channel.receive()) is not None and not isinstance(message, Shutdown):
                supervisor.tell(message)
            forwarding.cancel()
        while not published.empty():
            sender.put(published.get_nowait())
    except Exception as error:
        sender.put(ActorFailed(actor=SUPERVISOR, fatal=True, error=f"the pipeline could not run: {error}",
                               fix=f"its log {log_path or '(the terminal)'} says more"))
        raise
    finally:
        sender.close()
        channel.close()


async def _forward(published: asyncio.Queue[AnyMessage], sender: _Sender) -> None:
    while True:
        sender.put(await published.get())


class _Sender:
    """Writes to the client on a thread of its own: a client that falls behind (the screen
    runs at a lower priority) fills this queue for a moment and never makes the supervisor
    wait, whose routing of SpeechEnd to the final model is on the critical path."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="to-client", daemon=True)
        self._thread.start()

    def put(self, message: Message) -> None:
        self._queue.put(encode(message))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(5)

    def _run(self) -> None:
        while (data := self._queue.get()) is not None:
            try:
                self._conn.send_bytes(data)
            except OSError:
                return  # the client is gone; the pipe's end closes the supervisor


# --- the client's side -------------------------------------------------------------------------


class RemoteSupervisor:
    """``async with RemoteSupervisor(rings, actors, log_path) as supervisor:`` starts the
    supervisor's process and waits until its rings exist; ``receive()`` gives its messages
    (None once it has ended), ``tell()`` passes on what the user asks for, ``stop()`` ends
    it. Leaving the block waits for the process and removes any ring it left."""

    def __init__(self, rings: list[RingSpec], actors: list[ActorSpec], log_path: Path | None = None,
                 policy: RestartPolicy = RestartPolicy(), keeping: Keeping = Keeping()) -> None:
        self._keeping = keeping
        self._ring_specs = rings
        self._actors = actors
        self._log_path = log_path
        self._policy = policy
        self.rings: dict[str, Ring] = {}
        self.pid = 0
        self._process: mp.process.BaseProcess | None = None
        self._channel: Channel | None = None

    async def __aenter__(self) -> RemoteSupervisor:
        context = mp.get_context("spawn")
        ours, theirs = context.Pipe(duplex=True)
        self._process = context.Process(
            target=serve, args=(self._ring_specs, self._actors, self._log_path and str(self._log_path),
                                self._keeping, theirs),
            name=f"earwig-{SUPERVISOR}")
        self._process.start()
        theirs.close()
        self._channel = Channel(ours)
        try:
            first = await self._channel.receive()
            if not isinstance(first, ActorReady):
                if isinstance(first, ActorFailed):
                    raise EarwigError(first.error, first.fix)
                raise EarwigError("the pipeline's process ended while starting",
                                  f"its log {self._log_path or '(the terminal)'} says why")
            self.pid = first.pid
            self.rings = {spec.name: Ring.attach(spec.name) for spec in self._ring_specs}
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        for ring in self.rings.values():
            ring.close()
        self.rings.clear()
        process = self._process
        if process is not None and process.pid is not None:
            self.stop()
            grace = self._policy.shutdown_max_s + 5  # its actors' shutdown: a busy final actor may take that
            while process.is_alive() and grace > 0:
                await asyncio.sleep(0.05)
                grace -= 0.05
            if process.is_alive():
                process.kill()
            process.join(5)
        if self._channel is not None:
            self._channel.close()
        for spec in self._ring_specs:  # only where the supervisor's process could not
            segments.remove(spec.name)

    async def receive(self) -> AnyMessage | None:
        """The next message the supervisor published; None once its process has ended."""
        assert self._channel is not None
        return await self._channel.receive()

    def tell(self, message: Message) -> None:
        """What the user asks for (a pause), for the actors that listen for it."""
        try:
            self._channel.send(message)  # type: ignore[union-attr]
        except OSError:
            pass  # it has ended; receive() says so

    def stop(self) -> None:
        """Ask the supervisor to end its actors and close; ``receive()`` gives None once done."""
        self.tell(Shutdown())
