"""Actors for testing the supervisor: misbehaving ones (crash loops, hangs, fatal errors),
one that says something, and one that reports what was forwarded to it."""

import time

from earwig.errors import EarwigError
from earwig.messages import SpeechEnd, SpeechStart, Stats

LISTENS = (SpeechStart,)


async def main(actor):
    if actor.params == "crash":
        raise RuntimeError("this actor always crashes")
    if actor.params == "hang":
        time.sleep(3600)  # blocks its event loop: no more heartbeats
    if actor.params == "fatal":
        raise EarwigError("the widget is misconfigured", "set widget = 3")
    if actor.params == "speak":  # then echo what it is sent, which must not be its own words
        actor.publish(SpeechStart(source="mic", start=123))
        actor.publish(SpeechEnd(source="mic", start=123, end=456))
    def echo(message):
        actor.publish(Stats(actor=actor.name, counters={type(message).__name__: 1.0}))

    await actor.serve({kind: echo for kind in actor.spec.listens}, actor.stopping.wait())
