"""The actor runtime's receive loop: each message to its type's handler, in order, one at a
time; handlers that do not match the declared LISTENS are refused before anything runs."""

from __future__ import annotations

import asyncio

import pytest

from earwig.actors.runtime import Actor, ActorSpec
from earwig.messages import SpeechEnd, SpeechStart

pytestmark = pytest.mark.pure


def actor_listening_to(*kinds) -> Actor:
    return Actor(ActorSpec("a", "m", listens=frozenset(kinds)), channel=None)


def test_messages_reach_their_handlers_in_order_and_an_async_handler_is_awaited_first():
    actor = actor_listening_to(SpeechStart, SpeechEnd)
    seen = []

    async def slow_start(message):
        await asyncio.sleep(0.01)  # the next message waits for this one
        seen.append(("start", message.start))

    async def scenario():
        for message in (SpeechStart(source="mic", start=1), SpeechEnd(source="mic", start=1, end=9),
                        SpeechStart(source="mic", start=10)):
            actor.control.put_nowait(message)

        def end(message):
            seen.append(("end", message.end))

        async def work():
            while len(seen) < 3:
                await asyncio.sleep(0)
            return "finished"

        return await actor.serve({SpeechStart: slow_start, SpeechEnd: end}, work())

    assert asyncio.run(scenario()) == "finished"
    assert seen == [("start", 1), ("end", 9), ("start", 10)]


def test_handlers_that_differ_from_listens_are_refused():
    actor = actor_listening_to(SpeechStart, SpeechEnd)

    async def scenario():
        work = asyncio.sleep(0)
        try:
            await actor.serve({SpeechStart: print}, work)
        finally:
            work.close()

    with pytest.raises(TypeError, match="SpeechEnd"):
        asyncio.run(scenario())
