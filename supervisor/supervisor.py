"""The supervisor: owns the rings, spawns the actors, restarts them, delivers their
messages where the router (``supervisor/router``) says, and evicts idle model actors.
What the session keeps of those messages (the log, the audio, the echo and playback marks)
is the session keeper's (``earwig.session.keeper``): every message passes through it before
it is published.

Why it owns the rings: an actor that crashes must not take captured audio with it. The
rings are created here before any actor starts and unlinked here on every exit path, so a
restarted actor re-attaches to the same data, and a killed supervisor's segments are
removed by the next start (``segments.remove_stale``).

Why eviction ends the process: it is the only way to hand back all of a model's memory,
the CUDA context included. Only an actor that loaded its model is evicted (one that never
needed it holds no weights, and keeping its process spares the first utterance a spawn).
An evicted actor is spawned again by the next SpeechStart (or DictationStart: the final
model loads while the key is down); the audio spoken meanwhile waits in the rings,
addressed by sample position.

Why actors are forked from a server (multiprocessing's forkserver) that has imported
PyTorch, whisper and the VAD already: those imports are most of an actor's start (1.2 s of
the mel actor's 1.8 s back after a kill, ``bench recovery``), and a forked child shares the
imported pages. The server is a fresh process that has run nothing but the imports, so the
fork is safe; the capture and dictation actors' audio and X libraries are not preloaded (they
open connections at import). The server keeps the environment it started with, so each
actor is given the supervisor's own when it starts (``run_actor``).
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import signal
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from earwig.actors.runtime import FATAL_EXIT, ActorSpec, run_actor
from earwig.channel import Channel
from earwig.errors import EarwigError
from earwig.messages import ActorFailed, ActorReady, AnyMessage, Final, Heartbeat, Message, ModelState, Shutdown
from earwig.session.keeper import SessionKeeper
from earwig.shm import Ring, RingSpec, segments
from earwig.supervisor.router import Router
from earwig.supervisor.stop_signals import STOP_SIGNALS


#: What the fork server imports once, for every actor it starts.
PRELOADED = ["torch", "whisper", "onnxruntime", "earwig.actors.runtime", "earwig.actors.mel",
             "earwig.actors.preview", "earwig.actors.final"]


@dataclass(frozen=True)
class RestartPolicy:
    """Backoff doubles from ``first_delay_s``; more than ``max_restarts`` in ``window_s`` gives up."""

    first_delay_s: float = 0.1
    max_delay_s: float = 2.0
    max_restarts: int = 5
    window_s: float = 60.0
    heartbeat_timeout_s: float = 5.0
    #: From spawn to ActorReady: importing PyTorch in several processes at once on a busy
    #: 2-core machine takes seconds, and that is not a hang.
    startup_timeout_s: float = 60.0
    #: After Shutdown, how long an actor may go without a word (its heartbeat comes every
    #: 0.5 s, also while it transcribes) before it is killed: a hung one is ended, a busy
    #: one finishes what it owes (the final actor transcribing the last utterances).
    shutdown_grace_s: float = 10.0
    #: And the most any step of the shutdown waits, busy or not.
    shutdown_max_s: float = 120.0

    def after_exit(self, exitcode: int, evicted: bool, restarts: deque[float], now: float) -> Exit:
        """What an actor's exit calls for: an evicted or finished one (exit 0) rests, one that
        said why it cannot go on (FATAL_EXIT) is not restarted into the same error, one that
        crashed is restarted after a backoff, unless it crashed too often lately. ``restarts``
        (when it was restarted) is updated."""
        if evicted:
            return Exit("evicted")
        if exitcode == 0:
            return Exit("finished")
        if exitcode == FATAL_EXIT:
            return Exit("failed")
        restarts.append(now)
        while restarts and restarts[0] < now - self.window_s:
            restarts.popleft()
        if len(restarts) > self.max_restarts:
            return Exit("gave_up")
        return Exit("restart", min(self.max_delay_s, self.first_delay_s * 2 ** (len(restarts) - 1)))


@dataclass(frozen=True)
class Exit:
    action: Literal["evicted", "finished", "failed", "gave_up", "restart"]
    delay_s: float = 0.0


@dataclass
class _Running:
    spec: ActorSpec
    process: mp.process.BaseProcess | None = None
    channel: Channel | None = None
    last_seen: float = 0.0
    restarts: deque[float] = field(default_factory=deque)
    gave_up: bool = False
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    #: Ended for idleness (a model actor); the next SpeechStart spawns it again.
    evicted: bool = False
    #: When it last published something other than a heartbeat (a Partial, a Final).
    last_output: float = 0.0
    #: Messages for an evicted actor that is being woken, sent once it runs again.
    missed: list[AnyMessage] = field(default_factory=list)
    #: Its process's messages have all been read (the pipe reached its end).
    drained: bool = False
    #: It said ActorReady: from then on its heartbeats are watched.
    ready: bool = False
    #: The models it says it loaded (``ModelState``), by role: none yet, no memory to free
    #: by evicting it. Not always the configured one: one that does not fit falls back to
    #: a smaller one, and a retry may load a second.
    models: dict[str, str] = field(default_factory=dict)


class Supervisor:
    """Use as ``async with Supervisor(rings, actors) as sup:``; messages via ``subscribe()``."""

    def __init__(self, rings: list[RingSpec], actors: list[ActorSpec],
                 policy: RestartPolicy = RestartPolicy(), log_path: Path | None = None,
                 keeper: SessionKeeper | None = None) -> None:
        """``log_path``: where the actors' output goes (default: the terminal).
        ``keeper``: what the session keeps (default: nothing)."""
        self._ring_specs = rings
        self.log_path = log_path
        self.keeper = keeper or SessionKeeper()
        self._actors = {spec.name: _Running(spec) for spec in actors}
        self.policy = policy
        self.rings: dict[str, Ring] = {}
        self.stale_removed: list[str] = []
        self._subscribers: list[asyncio.Queue[AnyMessage]] = []
        self.router = Router(actors)
        self.router.last_activity = time.monotonic()
        self._watchdog_task: asyncio.Task | None = None
        self._stopping = False
        self._tasks: set[asyncio.Task] = set()
        self._ctx = mp.get_context("forkserver")
        self._ctx.set_forkserver_preload(PRELOADED)

    # --- life cycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Supervisor:
        self.stale_removed = segments.remove_stale()
        _start_fork_server()
        try:
            for spec in self._ring_specs:
                self.rings[spec.name] = _created(spec)
            for running in self._actors.values():
                self._spawn(running)
        except BaseException:
            await self.close()
            raise
        self._watchdog_task = self._watch(self._watchdog())
        self.keeper.start(self.rings)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        """End the actors in two steps, so that no utterance is left without its Final: first
        the others (the mel actor ends the utterance in progress, so its SpeechEnd goes
        out), then the final actor, which answers every SpeechEnd it has before it exits;
        their last messages are still received, logged and published. What stops answering
        (``shutdown_grace_s``), or is not done within ``shutdown_max_s``, is killed; then the
        rings are unlinked."""
        self._stopping = True
        if self._watchdog_task is not None:
            self._watchdog_task.cancel()
        for step in sorted({r.spec.shutdown_step for r in self._actors.values()}):
            await self._shut_down([r for r in self._actors.values() if r.spec.shutdown_step == step])
        for task in self._tasks:
            task.cancel()
        answerer = next((r for r in self._actors.values() if self.router.answers(r.spec.name)), None)
        self._deliver(self.keeper.end(), answerer)
        for running in self._actors.values():
            if running.process is not None:
                if running.process.is_alive():
                    running.process.kill()
                running.process.join(5)
            if running.channel is not None:
                running.channel.close()
        self.keeper.close()
        for ring in self.rings.values():
            ring.close()
            ring.unlink()
        self.rings.clear()

    async def _shut_down(self, group: list[_Running]) -> None:
        live = [r for r in group if r.process and r.process.is_alive()]
        for running in live:
            self._send(running, Shutdown())
        deadline = time.monotonic() + self.policy.shutdown_max_s
        # Exited, and every message it sent read (the pipe holds what it wrote last).
        while not all(r.drained for r in live):
            now = time.monotonic()
            silent = [r for r in live if not r.drained and now - r.last_seen > self.policy.shutdown_grace_s]
            if silent or now > deadline:
                return
            await asyncio.sleep(0.02)

    # --- what other parts use -----------------------------------------------------------

    def subscribe(self) -> asyncio.Queue[AnyMessage]:
        """A queue that receives every message (heartbeats aside) from now on."""
        queue: asyncio.Queue[AnyMessage] = asyncio.Queue()
        self._subscribers.append(queue)
        return queue

    def tell(self, message: Message) -> None:
        """A message from the user (the UI) to every actor that listens for its type; a
        pause is remembered and told again to an actor that restarts."""
        self._deliver(self.keeper.heard(message), None)

    def pid(self, actor: str) -> int | None:
        process = self._actors[actor].process
        return process.pid if process is not None and process.is_alive() else None

    def finished(self, actor: str) -> bool:
        """Whether the actor exited 0 on its own (its work is done: a replay reached its end)
        and every message it sent has been published."""
        running = self._actors[actor]
        process = running.process
        return (process is not None and process.exitcode == 0 and not self._stopping
                and not running.evicted and running.drained)

    def evicted(self, actor: str) -> bool:
        return self._actors[actor].evicted

    def restarts(self, actor: str) -> int:
        return len(self._actors[actor].restarts)

    # --- spawning and restarting -------------------------------------------------------

    def _spawn(self, running: _Running) -> None:
        loop = asyncio.get_running_loop()
        ours, theirs = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(target=run_actor, args=(running.spec, theirs, self.log_path and str(self.log_path),
                                                            dict(os.environ)),
                                    name=f"earwig-{running.spec.name}")
        process.start()
        theirs.close()
        running.process, running.channel = process, Channel(ours)
        running.last_seen = running.last_output = time.monotonic()
        running.evicted = running.drained = running.ready = False
        running.models = {}
        running.exited = asyncio.Event()
        loop.add_reader(process.sentinel, self._on_exit, running, process)
        self._watch(self._receive(running, running.channel))
        for message in self.router.told_again(running.spec.name):
            self._send(running, message)

    def _on_exit(self, running: _Running, process: mp.process.BaseProcess) -> None:
        asyncio.get_running_loop().remove_reader(process.sentinel)
        process.join()
        running.exited.set()
        if self._stopping or running.process is not process:
            return
        exit = self.policy.after_exit(process.exitcode, running.evicted, running.restarts, time.monotonic())
        name = running.spec.name
        if exit.action == "evicted":
            for role, model in running.models.items():
                self._announce(ModelState(role=role, model=model, state="evicted"))
            if running.missed:
                self._wake(running)
        elif exit.action == "failed":  # it said why in an ActorFailed
            running.gave_up = True
        elif exit.action == "gave_up":
            running.gave_up = True
            self._announce(ActorFailed(
                actor=name, fatal=True,
                error=f"{name} keeps crashing ({len(running.restarts)} times in {self.policy.window_s:.0f} s); "
                      "not restarting it again",
                fix=f"its error output in {self.log_path or 'the terminal'} says why"))
        elif exit.action == "restart":
            self._announce(ActorFailed(
                actor=name, fatal=False,
                error=f"{name} exited with code {process.exitcode}; restarting in {exit.delay_s:.1f} s"))
            asyncio.get_running_loop().call_later(exit.delay_s, self._respawn, running)

    def _respawn(self, running: _Running) -> None:
        if not self._stopping:
            self._spawn(running)

    async def _receive(self, running: _Running, channel: Channel) -> None:
        while (message := await channel.receive()) is not None:
            running.last_seen = time.monotonic()
            running.ready = running.ready or isinstance(message, ActorReady)
            if isinstance(message, ModelState) and message.state == "ready":
                running.models[message.role] = message.model
            if isinstance(message, Heartbeat):
                continue
            running.last_output = running.last_seen
            if (isinstance(message, Final) and self.router.answers(running.spec.name)
                    and not self.router.answered(message)):
                continue  # a restarted final actor redid an utterance already answered
            self._deliver(self.keeper.heard(message), running)
        channel.close()
        if channel is running.channel:
            running.drained = True

    async def _watchdog(self) -> None:
        """Kill an actor that stopped answering (hung, not crashed); the exit path restarts it.
        End a model actor that has been idle for its ``idle_evict_s``."""
        while True:
            await asyncio.sleep(min(self.policy.heartbeat_timeout_s / 4, self._evict_check_s()))
            now = time.monotonic()
            for running in self._actors.values():
                process = running.process
                if process is None or not process.is_alive() or running.evicted:
                    continue
                silent_for = now - running.last_seen
                if silent_for > (self.policy.heartbeat_timeout_s if running.ready
                                 else self.policy.startup_timeout_s):
                    process.kill()
                elif self._idle(running, now):
                    running.evicted = True
                    self._send(running, Shutdown())

    def _idle(self, running: _Running, now: float) -> bool:
        limit = running.spec.idle_evict_s
        return (limit is not None and bool(running.models) and self.router.quiet
                and now - max(self.router.last_activity, running.last_output) > limit)

    def _evict_check_s(self) -> float:
        limits = [r.spec.idle_evict_s for r in self._actors.values() if r.spec.idle_evict_s]
        return min(limits, default=60.0) / 4

    # --- plumbing ------------------------------------------------------------------------

    def _send(self, running: _Running, message: Message) -> None:
        if running.channel is not None:
            try:
                running.channel.send(message)
            except (BrokenPipeError, OSError):
                pass  # it is exiting; the exit path deals with it

    def _deliver(self, messages: list[AnyMessage], sender: _Running | None) -> None:
        """What the keeper let through, to every subscriber, then to the actors that listen."""
        for message in messages:
            self._publish(message)
            self._forward(message, sender)

    def _announce(self, message: AnyMessage) -> None:
        """The supervisor's own news (an actor evicted, failed), to every subscriber."""
        for kept in self.keeper.heard(message):
            self._publish(kept)

    def _publish(self, message: AnyMessage) -> None:
        for queue in self._subscribers:
            queue.put_nowait(message)

    def _forward(self, message: AnyMessage, sender: _Running | None) -> None:
        """Hand a message to the actors the router names; an evicted one is woken by speech."""
        for name in self.router.heard(message, sender and sender.spec.name, time.monotonic()):
            running = self._actors[name]
            if not running.evicted:
                self._send(running, message)
            elif (self.router.wakes(message) or running.missed) and not self._stopping:
                running.missed.append(message)
                self._wake(running)

    def _wake(self, running: _Running) -> None:
        """Spawn an evicted actor again, once its old process is gone, with what it missed."""
        if running.process is not None and running.process.is_alive():
            return  # still shutting down: its exit wakes it
        self._spawn(running)
        for message in running.missed:
            self._send(running, message)
        running.missed.clear()

    def _watch(self, coroutine) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


def _created(spec: RingSpec) -> Ring:
    """A ring, or one line saying why shared memory cannot hold it (/dev/shm full or capped)."""
    try:
        return Ring.create(spec)
    except OSError as error:
        raise EarwigError(f"cannot make the shared-memory ring {spec.name} ({spec.nbytes / 2**20:.1f} MB): "
                          f"{error.strerror or error}", "free space in /dev/shm (`df -h /dev/shm`), or lower "
                          "ring_seconds") from None


def _start_fork_server() -> None:
    """Start the fork server (once per process) ignoring SIGINT, SIGTERM and SIGHUP, which it
    keeps through its exec and hands to every actor it forks: a Ctrl-C, a kill of the
    session's process group or a closed terminal reaches them too, and a dead server cannot
    start the actor the shutdown still needs, nor may an actor just forked die of one before
    it ignores them itself (``run_actor``)."""
    from multiprocessing import forkserver

    saved = {signum: signal.signal(signum, signal.SIG_IGN) for signum in STOP_SIGNALS}
    try:
        forkserver.ensure_running()
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
