"""How every actor process lives: spawned, one asyncio loop, messages over one pipe.

Why a shared runtime: heartbeats, shutdown, parent-death and error reporting must behave
the same in every actor, so an actor module only writes its own receive/compute/publish.

An actor module exposes ``LISTENS``, the message types other actors publish that it wants
(the plan reads it into the ActorSpec, and the supervisor forwards exactly those), and
``async def main(actor: Actor)``, which sets up and hands its handlers (one per type in
``LISTENS``) and its work to ``actor.serve``: the runtime owns the receive loop. It runs
until ``main`` returns, until the supervisor sends Shutdown (``actor.stopping`` is set), or
until the supervisor dies (the pipe reaches EOF; then the process exits at once, so no
orphan keeps running).
An EarwigError from ``main`` becomes an ActorFailed message with its fix, and the process
exits with FATAL_EXIT so the supervisor does not restart it into the same error.
"""

from __future__ import annotations

import asyncio
import importlib
import multiprocessing
import os
import signal
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, TypeVar, get_args

from earwig.channel import Channel
from earwig.errors import EarwigError
from earwig.messages import ActorFailed, ActorReady, AnyMessage, Heartbeat, Message, Shutdown

T = TypeVar("T")
#: What a handler may return: nothing, or a coroutine the receive loop awaits before the
#: next message (so messages are handled one at a time, in the order they came).
Handler = Callable[[Any], Awaitable[None] | None]

HEARTBEAT_S = 0.5
FATAL_EXIT = 3


@dataclass(frozen=True)
class ActorSpec:
    """What the supervisor needs to (re)start an actor: picklable, passed at spawn."""

    name: str
    module: str
    params: Any = None
    #: Message types other actors publish that the supervisor forwards here (the module's
    #: ``LISTENS``: ``spec_for`` reads it).
    listens: frozenset[type[Message]] = frozenset()
    #: A model actor: ended after this many seconds without speech (freeing its memory)
    #: and started again by the next SpeechStart. None: runs for the whole session.
    idle_evict_s: float | None = None
    #: Added to the process's nice value: a best-effort actor (the preview) yields the CPU
    #: to the others when they want it, and has it all when they do not.
    niceness: int = 0
    #: Shutdown goes to the actors in steps, lowest first, each step once the one before
    #: has exited: the final actor (step 1) ends after the mel actor (step 0) has closed
    #: the utterance in progress, so that utterance gets its Final too.
    shutdown_step: int = 0

    def __post_init__(self) -> None:
        known = set(get_args(AnyMessage))
        wrong = [kind for kind in self.listens if kind not in known]
        if wrong:
            raise TypeError(f"actor {self.name} listens to {wrong!r}: not message types (earwig.messages)")


def spec_for(name: str, module: str, params: Any = None, **options: Any) -> ActorSpec:
    """The spec of the actor in ``module``, listening to what the module declares."""
    listens = frozenset(importlib.import_module(module).LISTENS)
    return ActorSpec(name, module, params, listens=listens, **options)


class Actor:
    """What an actor's ``main`` sees: its spec, a way to publish, and its control inbox."""

    def __init__(self, spec: ActorSpec, channel: Channel) -> None:
        self.spec = spec
        self.name = spec.name
        self.params = spec.params
        self.stopping = asyncio.Event()
        self.control: asyncio.Queue[AnyMessage] = asyncio.Queue()
        self._channel = channel

    def publish(self, message: Message) -> None:
        self._channel.send(message)

    async def serve(self, handlers: Mapping[type[Message], Handler], work: Awaitable[T]) -> T:
        """Hand every message the supervisor forwards to the handler for its type while
        ``work`` runs; return what ``work`` returns. The handlers must be exactly the
        spec's ``listens``: a type without a handler would be dropped unseen."""
        missing = set(self.spec.listens) ^ set(handlers)
        if missing:
            raise TypeError(f"actor {self.name}: handlers and LISTENS differ in {sorted(t.__name__ for t in missing)}")
        receiving = asyncio.create_task(self._receive(handlers))
        try:
            return await work
        finally:
            receiving.cancel()

    async def _receive(self, handlers: Mapping[type[Message], Handler]) -> None:
        while True:
            message = await self.control.get()
            handled = handlers[type(message)](message)
            if handled is not None:
                await handled

    async def stopping_or(self, event: asyncio.Event, timeout: float | None = None) -> None:
        """Wait until ``event`` is set or the actor is told to stop (or ``timeout`` seconds
        passed); clear ``event``."""
        if not event.is_set() and not self.stopping.is_set():
            waits = [asyncio.create_task(event.wait()), asyncio.create_task(self.stopping.wait())]
            _, left = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            for task in left:
                task.cancel()
        event.clear()


async def _heartbeat(actor: Actor) -> None:
    while True:
        actor.publish(Heartbeat(actor=actor.name, sent_ns=time.monotonic_ns()))
        await asyncio.sleep(HEARTBEAT_S)


async def _route_control(actor: Actor, channel: Channel) -> None:
    while True:
        message = await channel.receive()
        if message is None:  # the supervisor is gone: never outlive it
            os._exit(0)
        if isinstance(message, Shutdown):
            actor.stopping.set()
        else:
            actor.control.put_nowait(message)


async def _serve(spec: ActorSpec, conn: Connection) -> int:
    channel = Channel(conn)
    actor = Actor(spec, channel)
    main = importlib.import_module(spec.module).main
    helpers = [asyncio.create_task(_heartbeat(actor)), asyncio.create_task(_route_control(actor, channel))]
    actor.publish(ActorReady(actor=spec.name, pid=os.getpid()))
    try:
        await main(actor)
        return 0
    except EarwigError as error:
        actor.publish(ActorFailed(actor=spec.name, error=error.problem, fix=error.fix))
        return FATAL_EXIT
    finally:
        for task in helpers:
            task.cancel()
        channel.close()


def run_actor(spec: ActorSpec, conn: Connection, log_path: str | None = None,
              environment: dict[str, str] | None = None) -> None:
    """Process entry point. ``environment``: the supervisor's, which a process forked from a
    server that started earlier does not have (``supervisor/supervisor``); multiprocessing
    itself carries the working directory and ``sys.path``."""
    if environment is not None:
        os.environ.clear()
        os.environ.update(environment)
    # A library's multiprocessing lock (numba's, in the final actor) serves this process's
    # threads only. Under "fork" it is unlinked at once; under the fork server's own method
    # it would be left to the resource tracker, which calls it leaked when the session ends
    # (an actor ends with os._exit). This process starts no processes of its own.
    multiprocessing.set_start_method("fork", force=True)
    redirect_output(log_path)
    # Ctrl-C, a kill of the session or a closed terminal reach the whole process group; the
    # supervisor decides how actors stop (an actor that died of them would be restarted
    # into a shutdown).
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    if spec.niceness:
        os.nice(spec.niceness)
    try:
        code = run_loop(_serve(spec, conn))
    except Exception:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def redirect_output(log_path: str | None) -> None:
    """With ``log_path``, what the process prints (its own output, a library's warnings, a
    traceback) is appended there instead of reaching a terminal that a full-screen UI owns."""
    if log_path is not None:
        log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)


def run_loop(coroutine):
    """Run a process's main coroutine on uvloop (the default loop where there is none)."""
    try:
        import uvloop
    except ImportError:  # Windows
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)
