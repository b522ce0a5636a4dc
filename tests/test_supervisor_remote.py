"""The supervisor in its own process, driven by a client (how the monitor runs it): messages
both ways, the rings read by the client, and either side's death ending the other cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from earwig.messages import ActorReady, Level, PauseSource
from earwig.shm import segments
from earwig.supervisor.remote import RemoteSupervisor
from test_supervisor import replay_plan

pytestmark = pytest.mark.pipeline


async def _next(supervisor: RemoteSupervisor, kind, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        message = await asyncio.wait_for(supervisor.receive(), max(0.01, deadline - time.monotonic()))
        assert message is not None, "the supervisor's process ended"
        if isinstance(message, kind):
            return message


def _gone(pid: int) -> bool:
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


async def _still(ring, for_s: float = 1.0) -> int:
    """The ring's position once it has not moved for ``for_s`` (a running replay writes every
    10 ms); a replay that never stops fails at the deadline, however slow the machine."""
    deadline, position, since = time.monotonic() + 60, ring.published, time.monotonic()
    while time.monotonic() - since < for_s:
        assert time.monotonic() < deadline, "the replay did not stop"
        await asyncio.sleep(0.1)
        if ring.published != position:
            position, since = ring.published, time.monotonic()
    return position


def test_the_client_gets_the_messages_reads_the_rings_and_pauses_a_source(ring_prefix, long_speech):
    async def scenario():
        plan = replay_plan(ring_prefix, long_speech)
        async with RemoteSupervisor(plan.rings, plan.actors) as supervisor:
            ready = await _next(supervisor, ActorReady)
            await _next(supervisor, Level)
            ring = supervisor.rings[plan.rings[0].name]
            supervisor.tell(PauseSource(source="mic", paused=True))
            paused_at = await _still(ring)  # the replay holds its place...
            await asyncio.sleep(1.0)
            held = ring.published - paused_at  # ...and keeps holding it
            supervisor.tell(PauseSource(source="mic", paused=False))
            deadline = time.monotonic() + 60
            while (resumed := ring.published - paused_at) <= 50:  # 100 blocks of 10 ms a second once resumed
                assert time.monotonic() < deadline, "the replay did not resume"
                await asyncio.sleep(0.1)
            supervisor.stop()
            while await supervisor.receive() is not None:
                pass
            return supervisor.pid, ready.pid, held, resumed

    supervisor_pid, actor_pid, held, resumed = asyncio.run(scenario())
    assert supervisor_pid != os.getpid() and actor_pid not in (supervisor_pid, os.getpid())
    assert held == 0 and resumed > 50
    assert _gone(supervisor_pid) and _gone(actor_pid)


def test_when_the_supervisors_process_is_killed_the_client_sees_the_end_and_removes_its_rings(
        ring_prefix, long_speech):
    async def scenario():
        plan = replay_plan(ring_prefix, long_speech)
        async with RemoteSupervisor(plan.rings, plan.actors) as supervisor:
            ready = await _next(supervisor, ActorReady)
            os.kill(supervisor.pid, signal.SIGKILL)
            while await asyncio.wait_for(supervisor.receive(), 60) is not None:
                pass
            return ready.pid

    actor_pid = asyncio.run(scenario())
    deadline = time.monotonic() + 60
    while not _gone(actor_pid):  # its pipe to the supervisor ended: it does not outlive it
        assert time.monotonic() < deadline, "an actor outlived its supervisor"
        time.sleep(0.1)
    # ring_prefix fails the test if a segment is left


CLIENT = textwrap.dedent("""
    import asyncio, sys
    from earwig.messages import ActorReady
    from earwig.shm import segments
    from earwig.supervisor.remote import RemoteSupervisor
    sys.path.insert(0, sys.argv[2])
    from test_supervisor import replay_plan

    async def main():
        plan = replay_plan(segments.run_prefix(), sys.argv[1])
        async with RemoteSupervisor(plan.rings, plan.actors) as supervisor:
            while not isinstance(message := await supervisor.receive(), ActorReady):
                pass
            print(supervisor.pid, message.pid, plan.rings[0].name, flush=True)
            await asyncio.sleep(3600)

    asyncio.run(main())
""")


def test_when_the_client_is_killed_the_supervisor_ends_its_actors_and_unlinks_the_rings(long_speech):
    tests = os.path.dirname(__file__)
    client = subprocess.Popen([sys.executable, "-c", CLIENT, str(long_speech), tests],
                              stdout=subprocess.PIPE, text=True)
    try:
        supervisor_pid, actor_pid, ring = client.stdout.readline().split()
        assert ring in segments.existing(segments.PREFIX)
        client.send_signal(signal.SIGKILL)
        client.wait(60)
        deadline = time.monotonic() + 60
        while not (_gone(int(supervisor_pid)) and _gone(int(actor_pid))):
            assert time.monotonic() < deadline, "the supervisor or an actor outlived the client"
            time.sleep(0.1)
        assert ring not in segments.existing(segments.PREFIX)
    finally:
        client.kill()
