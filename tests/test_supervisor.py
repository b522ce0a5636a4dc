"""The supervisor with real actor processes: restarts, policies, and rings that outlive actors."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import numpy as np
import psutil
import pytest
import soundfile

from earwig.actors.runtime import ActorSpec
from earwig.audio.files import read_audio
from earwig.config import Config, SourceConfig
from earwig.messages import ActorFailed, ActorReady, SourceEnded, SpeechStart, Stats
from earwig.supervisor.plan import capture_plan
from earwig.supervisor.supervisor import RestartPolicy, Supervisor

pytestmark = pytest.mark.pipeline


async def next_of(events: asyncio.Queue, kind, timeout=60.0, where=lambda m: True):
    deadline = time.monotonic() + timeout
    while True:
        message = await asyncio.wait_for(events.get(), max(0.01, deadline - time.monotonic()))
        if isinstance(message, kind) and where(message):
            return message


async def until(condition, what: str, timeout: float = 60.0) -> None:
    """Wait for an event (a generous deadline only guards against a hang)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        await asyncio.sleep(0.01)


def replay_plan(prefix, path, realtime=True):
    config = Config(mic=SourceConfig(replay=str(path), realtime=realtime),
                    speakers=SourceConfig(enabled=False))
    return capture_plan(config, prefix)


def test_kill_9_of_a_capture_actor_restarts_it_and_loses_no_audio(ring_prefix, long_speech):
    async def scenario():
        plan = replay_plan(ring_prefix, long_speech)
        async with Supervisor(plan.rings, plan.actors) as supervisor:
            events = supervisor.subscribe()
            ring = supervisor.rings[plan.rings[0].name]
            # Counted, not timed: a second of audio is in before the kill, and more after it.
            await until(lambda: ring.published * ring.spec.item_len >= 16000, "audio before the kill")
            before = ring.published
            kept = ring.get(0).data.copy()
            old_pid = supervisor.pid("capture-mic")
            os.kill(old_pid, signal.SIGKILL)
            await until(lambda: ring.published > before and supervisor.pid("capture-mic") not in (None, old_pid),
                        "the restarted capture actor's audio")
            notice = await next_of(events, ActorFailed)
            ended = await next_of(events, SourceEnded, timeout=60)
            whole = ring.get(0)
            return before, kept, notice, ended, whole

    before, kept, notice, ended, whole = asyncio.run(scenario())
    assert before > 0
    assert not notice.fatal and "restarting" in notice.error
    audio = read_audio(long_speech)
    samples = whole.data.reshape(-1)
    # What was in the ring before the kill is untouched...
    np.testing.assert_array_equal(samples[: kept.size], kept.reshape(-1))
    # ...and the restarted replay continued exactly where the ring stopped: no gap, no repeat.
    assert ended.end == len(audio)
    np.testing.assert_array_equal(samples[: len(audio)], audio)


def test_fast_replay_paces_itself_to_its_slowest_reader(ring_prefix, long_speech, tmp_path):
    """The reader reads nothing until half the ring holds what it has not read (where the
    paced replay stops for it), stalls a while longer, then reads: a replay that did not
    wait for it would write the rest of the file (four times ``long_speech``: longer than
    the ring) over what is unread; the paced one loses nothing, however long the stall
    (its length only decides how surely a replay that does not wait is caught)."""
    path = tmp_path / "longer.wav"
    soundfile.write(path, np.tile(read_audio(long_speech), 4), 16000)
    audio = read_audio(path)

    async def scenario():
        config = Config(mic=SourceConfig(replay=str(path), realtime=False), speakers=SourceConfig(enabled=False),
                        ring_seconds=Config().vad.max_utterance_s)
        plan = capture_plan(config, ring_prefix)
        async with Supervisor(plan.rings, plan.actors) as supervisor:
            ring = supervisor.rings[plan.rings[0].name]
            assert ring.spec.capacity * ring.spec.item_len < len(audio)
            reader = ring.reader(slot=0, start=0)
            events = supervisor.subscribe()
            await until(lambda: ring.published >= ring.spec.capacity // 2, "half a ring of unread audio")
            await asyncio.sleep(3.0)
            chunks = []
            while sum(len(c.data) for c in chunks) * ring.spec.item_len < len(audio):
                await reader.wait(timeout=60)
                chunks.append(reader.read(max_items=64))
                await asyncio.sleep(0.002)  # a slow consumer
            await next_of(events, SourceEnded)
            return chunks, ring.spec.item_len

    chunks, item_len = asyncio.run(scenario())
    assert sum(c.lost for c in chunks) == 0, "fast replay must not overrun its reader"
    samples = np.concatenate([c.data.reshape(-1) for c in chunks])
    np.testing.assert_array_equal(samples[:len(audio)], audio[:len(samples)])


def policy_run(actor_mode, policy, watch=10.0):
    async def scenario():
        spec = ActorSpec("flaky", "actors_for_tests", actor_mode)
        async with Supervisor([], [spec], policy) as supervisor:
            events = supervisor.subscribe()
            seen = []
            try:
                while True:
                    seen.append(await asyncio.wait_for(events.get(), watch))
                    if isinstance(seen[-1], ActorFailed) and seen[-1].fatal:
                        break
            except asyncio.TimeoutError:
                pass
            return seen, supervisor.restarts("flaky")

    return asyncio.run(scenario())


def test_an_actor_that_keeps_crashing_is_given_up_with_a_clear_message():
    policy = RestartPolicy(first_delay_s=0.01, max_delay_s=0.05, max_restarts=3)
    seen, restarts = policy_run("crash", policy)
    failures = [m for m in seen if isinstance(m, ActorFailed)]
    assert [f.fatal for f in failures] == [False, False, False, True]
    assert "keeps crashing" in failures[-1].error
    assert restarts == 4


def test_a_fatal_error_is_reported_with_its_fix_and_not_restarted():
    seen, restarts = policy_run("fatal", RestartPolicy(), watch=3.0)
    failures = [m for m in seen if isinstance(m, ActorFailed)]
    assert len(failures) == 1
    assert (failures[0].error, failures[0].fix) == ("the widget is misconfigured", "set widget = 3")
    assert restarts == 0


def test_a_hung_actor_is_killed_and_restarted():
    policy = RestartPolicy(heartbeat_timeout_s=1.0, first_delay_s=0.01, max_restarts=1)
    seen, restarts = policy_run("hang", policy, watch=8.0)
    assert sum(isinstance(m, ActorReady) for m in seen) >= 2
    assert restarts >= 1


def test_shutdown_stops_every_actor_process(ring_prefix):
    async def scenario():
        spec = ActorSpec("idle", "actors_for_tests", "idle")
        async with Supervisor([], [spec]) as supervisor:
            await next_of(supervisor.subscribe(), ActorReady)
            return supervisor.pid("idle")

    pid = asyncio.run(scenario())
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_messages_are_forwarded_to_the_actors_that_listen_for_them():
    async def scenario():
        listener = ActorSpec("listener", "actors_for_tests", "echo", listens=frozenset({SpeechStart}))
        speaker = ActorSpec("speaker", "actors_for_tests", "speak", listens=frozenset({SpeechStart}))
        async with Supervisor([], [listener, speaker]) as supervisor:
            events = supervisor.subscribe()
            echoed = await next_of(events, Stats, where=lambda m: m.actor == "listener")
            assert echoed.counters == {"SpeechStart": 1.0}
            await asyncio.sleep(0.5)  # nothing else arrives: not SpeechEnd, not an echo to the speaker
            later = []
            while not events.empty():
                later.append(events.get_nowait())
            assert not [m for m in later if isinstance(m, Stats)]

    asyncio.run(scenario())
