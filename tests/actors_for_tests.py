"""Misbehaving actors for testing the supervisor's policies (crash loops, hangs, fatal errors)."""

import time

from earwig.errors import EarwigError


async def main(actor):
    if actor.params == "crash":
        raise RuntimeError("this actor always crashes")
    if actor.params == "hang":
        time.sleep(3600)  # blocks its event loop: no more heartbeats
    if actor.params == "fatal":
        raise EarwigError("the widget is misconfigured", "set widget = 3")
    await actor.stopping.wait()
