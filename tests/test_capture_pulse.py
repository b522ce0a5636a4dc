"""Real capture: speech played into a headless PulseAudio's fake microphone and speakers
arrives in the PCM rings, through real capture actor processes, both sources at once."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from earwig.audio.files import read_audio
from earwig.config import SAMPLE_RATE, Config, SourceConfig
from earwig.messages import Level, PauseSource, SourceState
from earwig.profiling.harness import headless
from earwig.supervisor.plan import capture_plan
from earwig.supervisor.supervisor import Supervisor

pytestmark = pytest.mark.service


def best_correlation(recorded: np.ndarray, played: np.ndarray) -> float:
    """Pearson correlation of ``played`` with the best-aligned stretch of ``recorded``
    (which may begin a moment into the played file's leading silence: 0.1 s are allowed)."""
    recorded = np.concatenate([np.zeros(1600, recorded.dtype), recorded])
    n = len(recorded) + len(played)
    spectrum = np.fft.rfft(recorded, n) * np.conj(np.fft.rfft(played, n))
    lag = int(np.argmax(np.fft.irfft(spectrum, n)[: len(recorded) - len(played) + 1]))
    return float(np.corrcoef(recorded[lag: lag + len(played)], played)[0, 1])


def correlation_in_pieces(recorded: np.ndarray, played: np.ndarray, piece_s: float = 0.5,
                          slack_s: float = 0.5) -> float:
    """The median, over the played audio's voiced half-seconds, of each one's Pearson
    correlation with ``recorded`` at its own best lag within ``slack_s`` of the whole file's.
    Playback on a busy machine may run dry for a moment (an underrun): the speakers then
    play a gap, and everything after it comes a little later; the whole file no longer
    lines up at one lag, while each piece of it still does. Audio that was not played has
    no lag at which most pieces line up."""
    recorded = np.concatenate([np.zeros(1600, recorded.dtype), recorded]).astype(np.float64)
    played = played.astype(np.float64)
    n = len(recorded) + len(played)
    spectrum = np.fft.rfft(recorded, n) * np.conj(np.fft.rfft(played, n))
    lag = int(np.argmax(np.fft.irfft(spectrum, n)[: len(recorded) - len(played) + 1]))
    piece, slack = int(piece_s * SAMPLE_RATE), int(slack_s * SAMPLE_RATE)
    scores = []
    for start in range(0, len(played) - piece + 1, piece):
        chunk = played[start:start + piece] - played[start:start + piece].mean()
        if chunk.std() < 0.1 * played.std():
            continue
        low = max(0, lag + start - slack)
        window = recorded[low: min(len(recorded), lag + start + slack + piece)]
        if len(window) < piece:
            scores.append(0.0)
            continue
        m = len(window) + piece
        products = np.fft.irfft(np.fft.rfft(window, m) * np.conj(np.fft.rfft(chunk, m)), m)[: len(window) - piece + 1]
        sums = np.concatenate([[0.0], np.cumsum(window)])
        squares = np.concatenate([[0.0], np.cumsum(window ** 2)])
        spread = (squares[piece:] - squares[:-piece]) - (sums[piece:] - sums[:-piece]) ** 2 / piece
        pearson = products / np.sqrt(np.maximum(spread, 1e-12) * np.sum(chunk ** 2))
        scores.append(float(pearson.max()))
    return float(np.median(scores))


async def samples_written(ring, reader, count: int, within_s: float = 60.0) -> None:
    """Waits until the ring holds ``count`` samples past ``reader``'s position: a count of
    audio, not a time, so a slow machine only makes it wait longer."""
    until = reader.position + -(-count // ring.spec.item_len)
    assert await reader.wait(timeout=within_s, until=until), f"the ring did not take {count} samples"


async def capture_while_playing(prefix, pulse_env, speech):
    config = Config(mic=SourceConfig(device="fakemic"), speakers=SourceConfig(device="sysout.monitor"))
    plan = capture_plan(config, prefix)
    async with Supervisor(plan.rings, plan.actors) as supervisor:
        events = supervisor.subscribe()
        mic, speakers = (supervisor.rings[r.name] for r in plan.rings)
        # An idle null-sink monitor starts delivering only after ~1-2 s: wait for both.
        for _ in range(200):
            if mic.published and speakers.published:
                break
            await asyncio.sleep(0.05)
        readers = [mic.reader(), speakers.reader()]
        players = [
            await asyncio.create_subprocess_exec("paplay", "--device=micfeed", str(speech["a"]), env=pulse_env),
            await asyncio.create_subprocess_exec("paplay", "--device=sysout", str(speech["b"]), env=pulse_env),
        ]
        for player in players:
            assert await player.wait() == 0
        for ring, reader, played in zip((mic, speakers), readers, (speech["a"], speech["b"])):
            await samples_written(ring, reader, len(read_audio(played)) + SAMPLE_RATE // 2)
        recorded = [reader.read() for reader in readers]
        levels = []
        while not events.empty():
            message = events.get_nowait()
            if isinstance(message, Level):
                levels.append(message)
    return recorded, levels


def test_speech_played_into_mic_and_speakers_arrives_in_both_rings(ring_prefix, pulse, speech):
    recorded, levels = asyncio.run(capture_while_playing(ring_prefix, pulse, speech))
    mic, speakers = (batch.data.reshape(-1) for batch in recorded)
    assert all(batch.lost == 0 for batch in recorded)
    said_a, said_b = read_audio(speech["a"]), read_audio(speech["b"])

    assert best_correlation(mic, said_a) > 0.9
    assert best_correlation(speakers, said_b) > 0.9
    # Each source holds its own audio, not the other's.
    assert best_correlation(mic, said_b) < 0.3
    assert best_correlation(speakers, said_a) < 0.3

    # Levels rise while speech plays, ~20 per second per source.
    for source in ("mic", "speakers"):
        loud = [lv for lv in levels if lv.source == source and lv.rms_db > -40]
        assert len(loud) > 20, f"{source}: too few loud level messages"


async def pause_while_playing(prefix, pulse_env, speech):
    """Speech into the fake microphone while the source is paused, then again after resuming.

    The actor is given 0.3 s to take each PauseSource: a quiet tone playing throughout would
    have said when it had, but a paplay killed mid-stream made PulseAudio 16 abort
    (memblock.c: ``n_imported > 0`` failed), taking every later test's server with it."""
    config = Config(mic=SourceConfig(device="fakemic"), speakers=SourceConfig(enabled=False))
    plan = capture_plan(config, prefix)
    async with Supervisor(plan.rings, plan.actors) as supervisor:
        ring = supervisor.rings[plan.rings[0].name]
        while not ring.published:
            await asyncio.sleep(0.05)
        said = len(read_audio(speech["a"]))
        recorded = []
        for paused in (True, False):
            supervisor.tell(PauseSource(source="mic", paused=paused))
            await asyncio.sleep(0.3)  # the actor has it before the speech starts
            reader = ring.reader()
            player = await asyncio.create_subprocess_exec("paplay", "--device=micfeed", str(speech["a"]),
                                                          env=pulse_env)
            assert await player.wait() == 0
            await samples_written(ring, reader, said + SAMPLE_RATE // 2)
            recorded.append(reader.read().data.reshape(-1))
    return recorded


def test_a_paused_device_writes_silence_for_as_long_as_it_is_paused_then_resumes(ring_prefix, pulse, speech):
    while_paused, after = asyncio.run(pause_while_playing(ring_prefix, pulse, speech))
    said = read_audio(speech["a"])
    assert len(while_paused) >= len(said)  # time went on: the ring took every block...
    assert not np.any(while_paused)  # ...of silence
    assert best_correlation(after, said) > 0.9  # and the voice is back after resuming


async def next_source_state(events, within_s: float) -> SourceState:
    deadline = time.monotonic() + within_s
    while (left := deadline - time.monotonic()) > 0:
        message = await asyncio.wait_for(events.get(), left)
        if isinstance(message, SourceState):
            return message
    raise AssertionError(f"no SourceState within {within_s} s")


async def unplug_while_capturing(prefix, pulse_env, speech):
    """The fake microphone is unplugged (its module unloaded), spoken into, plugged back in,
    and spoken into again."""
    config = Config(mic=SourceConfig(device="fakemic"), speakers=SourceConfig(enabled=False))
    plan = capture_plan(config, prefix)
    async with Supervisor(plan.rings, plan.actors) as supervisor:
        events = supervisor.subscribe()
        ring = supervisor.rings[plan.rings[0].name]
        while not ring.published:
            await asyncio.sleep(0.05)
        with headless.unplugged("fakemic"):
            gone = await next_source_state(events, within_s=60)
            await asyncio.sleep(1.0)  # the stream PulseAudio moved elsewhere is closed by now
            reader = ring.reader()
            player = await asyncio.create_subprocess_exec("paplay", "--device=micfeed", str(speech["a"]),
                                                          env=pulse_env)
            assert await player.wait() == 0
            await samples_written(ring, reader, len(read_audio(speech["a"])))  # silence went on meanwhile
            while_gone = reader.read().data.reshape(-1)
        back = await next_source_state(events, within_s=60)
        await asyncio.sleep(0.5)
        reader = ring.reader()
        player = await asyncio.create_subprocess_exec("paplay", "--device=micfeed", str(speech["a"]), env=pulse_env)
        assert await player.wait() == 0
        await samples_written(ring, reader, len(read_audio(speech["a"])) + SAMPLE_RATE // 2)
        after = reader.read().data.reshape(-1)
    return gone, back, while_gone, after


def test_an_unplugged_device_is_reported_writes_silence_and_is_reopened_when_it_returns(ring_prefix, pulse, speech):
    gone, back, while_gone, after = asyncio.run(unplug_while_capturing(ring_prefix, pulse, speech))
    said = read_audio(speech["a"])
    assert (gone.source, gone.connected) == ("mic", False) and "fakemic: disconnected" in gone.detail
    assert len(while_gone) >= len(said)  # time went on while it was gone...
    assert not np.any(while_gone)  # ...in silence: nothing of another source leaked in
    assert (back.source, back.connected, back.detail) == ("mic", True, "fakemic")
    assert best_correlation(after, said) > 0.9  # the voice is back
