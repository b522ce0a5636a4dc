"""The whole live pipeline run on replays until the test has seen what it waits for: the
helper of the tests that drive capture, mel, preview and final processes end to end."""

from __future__ import annotations

import asyncio
import time

from pathlib import Path

from earwig.config import Config
from earwig.messages import Final, PauseSource, SourceEnded, SpeechEnd, SpeechStart
from earwig.session.keeper import Keeping, SessionKeeper
from earwig.session.log import new_session_path
from earwig.shm import segments
from earwig.supervisor.plan import Plan, session_audio_rings, transcription_plan
from earwig.supervisor.supervisor import Supervisor
from held_replays import HeldReplays, Hold


async def run_live(config: Config, until, hold: Hold | None = None, timeout: float = 180.0) -> tuple[list, Supervisor]:
    """Run the whole pipeline (capture, mel, preview, final) until ``until(messages)``; the
    replays hold their place when ``hold`` says (by default while a model loads:
    ``HeldReplays``), and what it orders is told to the supervisor."""
    plan = transcription_plan(config, segments.run_prefix())
    seen: list = []
    hold = hold or HeldReplays()
    async with Supervisor(plan.rings, plan.actors) as supervisor:
        queue = supervisor.subscribe()
        deadline = time.monotonic() + timeout
        while not until(seen):
            assert time.monotonic() < deadline, f"timed out; last messages: {seen[-8:]}"
            try:
                message = await asyncio.wait_for(queue.get(), 0.25)
                seen.append(message)
            except asyncio.TimeoutError:
                message = None  # nothing came: what the hold waits for may have happened meanwhile
            if (held := hold.see(message)) is not None:
                for source in ("mic", "speakers"):
                    supervisor.tell(PauseSource(source=source, paused=held))
            for order in hold.orders():
                supervisor.tell(order)
    return seen, supervisor


def keeping_everything(plan: Plan, prefix: str) -> tuple[Path, SessionKeeper]:
    """A new session log, and a keeper that writes it and keeps every source's audio beside it."""
    log = new_session_path()
    return log, SessionKeeper(Keeping(log=log, audio=session_audio_rings(plan, prefix)))


def replays_done(sources: list[str]):
    """Every replay ended and every utterance has its Final."""
    def done(seen: list) -> bool:
        ended = {m.source for m in seen if isinstance(m, SourceEnded)}
        ends = sum(isinstance(m, SpeechEnd) for m in seen)
        finals = sum(isinstance(m, Final) for m in seen)
        return ended >= set(sources) and ends == finals and ends > 0 and quiet(seen)
    return done


def quiet(seen: list) -> bool:
    """No utterance is in progress: the last message is not a SpeechStart."""
    return not seen or not isinstance(seen[-1], SpeechStart)
