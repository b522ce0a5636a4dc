"""The capture actor: one source's audio into its PCM ring, and its level ~20 times a second.

receive  blocks from the device's PortAudio callback (handed to the event loop, so the
         audio thread does nothing but copy), or from a replayed file; PauseSource from
         the user (a paused device writes silence, a paused replay holds its place); a
         device that goes away writes silence until it is back
compute  downmix and resample to 16 kHz mono (soxr, streaming), cut into ring items,
         RMS/peak per 50 ms
publish  ring items stamped with their capture time; Level, Stats, SourceState when a
         device goes or comes back, and SourceEnded when a replay reaches its file's end

Positions need no bookkeeping: ring item ``n`` holds samples ``n*B .. (n+1)*B``. A
restarted capture actor continues the ring's sequence, and a restarted replay continues the
file from the last sample the ring holds, so nothing is written twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import numpy as np
import soxr

from earwig.actors.capture_device_life import PRESENCE_POLL_S, DeviceLife, Gone, Pause
from earwig.actors.capture_devices import NO_SERVER_FIX, Device, find_again
from earwig.actors.runtime import Actor
from earwig.audio.files import read_audio
from earwig.config import SAMPLE_RATE
from earwig.errors import EarwigError
from earwig.messages import ActorFailed, Level, PauseSource, Source, SourceEnded, SourceState, Stats
from earwig.shm import Ring

LEVEL_WINDOW_S = 0.05
STATS_EVERY_S = 2.0
REPLAY_CHUNK_S = 0.01
PAUSED_POLL_S = 0.05


@dataclass(frozen=True)
class CaptureParams:
    source: Source
    ring: str
    device: Device | None = None
    replay: str = ""
    realtime: bool = True


LISTENS = (PauseSource,)


async def main(actor: Actor) -> None:
    params: CaptureParams = actor.params
    ring = Ring.attach(params.ring)
    pause = Pause()

    def follow(message: PauseSource) -> None:
        if message.source == params.source:
            pause.set(message.paused, time.monotonic())

    try:
        await actor.serve({PauseSource: follow}, _capture(actor, ring, pause))
    finally:
        ring.close()


async def _capture(actor: Actor, ring: Ring, pause: Pause) -> None:
    params: CaptureParams = actor.params
    publisher = _Publisher(actor, ring, params.source, fast=bool(params.replay) and not params.realtime)
    if params.replay:
        blocks = _replay_blocks(actor, ring, pause)
    else:
        blocks = _device_blocks(actor, params.device, publisher)
    async for audio, captured_ns in blocks:
        publisher.push(np.zeros_like(audio) if pause.paused else audio, captured_ns)
        if actor.stopping.is_set():
            return
    if params.replay:
        publisher.finish()


# --- receive ------------------------------------------------------------------------------


async def _device_blocks(actor: Actor, device: Device,
                         publisher: _Publisher) -> AsyncIterator[tuple[np.ndarray, int]]:
    """Blocks from a live device, resampled to 16 kHz mono as they arrive. While the device
    is gone (``DeviceLife``): silence at real-time pace until it is listed again (maybe with
    another PortAudio index), then a new stream."""
    source, life = actor.params.source, DeviceLife()

    def gone(lost: Gone | None) -> None:
        """Said at once: the stream's close (~0.8 s through the ALSA pulse plugin) comes after."""
        if lost is not None:
            actor.publish(SourceState(source=source, connected=False, detail=f"{device.name}: {lost.why}"))

    while True:
        async for block in _stream_blocks(device, publisher, life, gone):
            yield block
        found = None
        while found is None:
            await asyncio.sleep(PRESENCE_POLL_S)
            yield np.zeros(life.silence_due(time.monotonic()), np.float32), time.monotonic_ns()
            found = await asyncio.to_thread(find_again, device)
        device = found
        life.back()
        actor.publish(SourceState(source=source, connected=True, detail=device.name))


async def _stream_blocks(device: Device, publisher: _Publisher, life: DeviceLife,
                         gone: Callable[[Gone | None], None]) -> AsyncIterator[tuple[np.ndarray, int]]:
    """One PortAudio stream's blocks until ``life`` says the device is gone (``gone`` is
    told why, as soon as it does)."""
    import sounddevice as sd

    loop = asyncio.get_running_loop()
    arrived: asyncio.Queue[tuple[np.ndarray, int, bool]] = asyncio.Queue()

    def on_audio(indata, frames, time_info, status) -> None:
        loop.call_soon_threadsafe(arrived.put_nowait,
                                  (indata.copy(), time.monotonic_ns(), bool(status.input_overflow)))

    resampler = soxr.ResampleStream(device.samplerate, SAMPLE_RATE, 1, dtype="float32")
    try:
        with _pulse_source(device.pulse_source):
            stream = sd.InputStream(device=device.portaudio_device, samplerate=device.samplerate,
                                    channels=device.channels, dtype="float32", callback=on_audio)
            stream.start()
    except (sd.PortAudioError, ValueError) as error:
        lost = life.open_failed(str(error), time.monotonic())
        if lost is None:
            raise EarwigError(f"cannot open audio device {device.name!r}: {error}", NO_SERVER_FIX) from None
        gone(lost)
        return
    life.opened(time.monotonic())
    try:
        while life.state == "streaming":
            try:
                block, captured_ns, overflow = await asyncio.wait_for(arrived.get(), PRESENCE_POLL_S)
                life.block(time.monotonic())
                publisher.input_overflows += overflow
                yield resampler.resample_chunk(block.mean(axis=1)), captured_ns
            except asyncio.TimeoutError:
                gone(life.nothing_for_a_poll(time.monotonic()))
            if life.state == "streaming" and device.pulse_source and life.check_listing(time.monotonic()):
                gone(life.listed(await asyncio.to_thread(find_again, device) is not None, time.monotonic()))
    finally:  # closing through the ALSA pulse plugin takes ~0.8 s: heartbeats go on meanwhile
        await asyncio.to_thread(stream.close)


@contextlib.contextmanager
def _pulse_source(name: str) -> Iterator[None]:
    """PulseAudio's source for the stream opened within: the ALSA pulse plugin reads it from
    the environment when the stream opens, and nothing else in this process needs it."""
    if not name:
        yield
        return
    before = os.environ.get("PULSE_SOURCE")
    os.environ["PULSE_SOURCE"] = name
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PULSE_SOURCE", None)
        else:
            os.environ["PULSE_SOURCE"] = before


async def _replay_blocks(actor: Actor, ring: Ring, pause: Pause) -> AsyncIterator[tuple[np.ndarray, int]]:
    """A file in 10 ms chunks, at real-time pace or as fast as the slowest ring reader;
    nothing while paused. A file cut short is played as far as it goes, with a warning."""
    params, stopping = actor.params, actor.stopping
    audio = read_audio(params.replay, lambda problem: actor.publish(
        ActorFailed(actor=actor.name, fatal=False, error=problem)))
    chunk = int(SAMPLE_RATE * REPLAY_CHUNK_S)
    resume_at = ring.published * ring.spec.item_len
    started = time.monotonic()
    for at in range(resume_at, len(audio), chunk):
        while pause.paused and not stopping.is_set():
            await asyncio.sleep(PAUSED_POLL_S)
        if params.realtime:
            due = started + pause.paused_s + (at - resume_at) / SAMPLE_RATE
            if due > time.monotonic():
                await asyncio.sleep(due - time.monotonic())
        else:
            await _wait_for_readers(ring, stopping)
        yield audio[at:at + chunk], time.monotonic_ns()


async def _wait_for_readers(ring: Ring, stopping: asyncio.Event) -> None:
    """Backpressure for fast replay: stay within half a ring of the slowest reader."""
    while not stopping.is_set():
        cursors = ring.reader_cursors()
        if cursors and ring.published - min(cursors) < ring.spec.capacity // 2:
            return
        await asyncio.sleep(0.001)


# --- compute and publish -------------------------------------------------------------------


class _Publisher:
    """Cuts 16 kHz audio into ring items and reports levels and counters."""

    def __init__(self, actor: Actor, ring: Ring, source: Source, fast: bool = False) -> None:
        self._actor, self._source = actor, source
        #: A replay faster than real time publishes a Level per LEVEL_WINDOW_S of wall time,
        #: not of audio: a meter shows no more, and at a hundred times real time the Levels
        #: alone would flood every client (a screen at a low priority most of all).
        self._level_gap_s = LEVEL_WINDOW_S if fast else 0.0
        self._next_level = 0.0
        self._writer = ring.writer()
        self._item_len = ring.spec.item_len
        self._pending = np.zeros(0, np.float32)
        self._items_per_level = max(1, round(SAMPLE_RATE * LEVEL_WINDOW_S / self._item_len))
        self._level_sumsq, self._level_peak, self._level_items = 0.0, 0.0, 0
        self._next_stats = time.monotonic() + STATS_EVERY_S
        self.input_overflows = 0

    def push(self, audio: np.ndarray, captured_ns: int) -> None:
        audio = np.concatenate([self._pending, audio.astype(np.float32, copy=False)])
        count = len(audio) // self._item_len
        self._pending = audio[count * self._item_len:]
        if count == 0:
            return
        items = audio[:count * self._item_len].reshape(count, self._item_len)
        first = self._writer.write(items, captured_ns)
        self._levels(items, first)
        if time.monotonic() >= self._next_stats:
            self._stats()

    def finish(self) -> None:
        """End of a replay: flush the last partial item (zero-padded) and say where it ended."""
        end = self._writer.next_seq * self._item_len + len(self._pending)
        if len(self._pending):
            item = np.zeros(self._item_len, np.float32)
            item[:len(self._pending)] = self._pending
            self._writer.write(item)
            self._pending = np.zeros(0, np.float32)
        self._stats()
        self._actor.publish(SourceEnded(source=self._source, end=end))

    def _levels(self, items: np.ndarray, first: int) -> None:
        sumsq = np.einsum("ij,ij->i", items, items)
        peaks = np.abs(items).max(axis=1)
        for offset in range(len(items)):
            self._level_sumsq += float(sumsq[offset])
            self._level_peak = max(self._level_peak, float(peaks[offset]))
            self._level_items += 1
            if self._level_items == self._items_per_level:
                self._publish_level((first + offset + 1) * self._item_len)
                self._level_sumsq, self._level_peak, self._level_items = 0.0, 0.0, 0

    def _publish_level(self, end: int) -> None:
        if self._level_gap_s:
            now = time.monotonic()
            if now < self._next_level:
                return
            self._next_level = now + self._level_gap_s
        rms = np.sqrt(self._level_sumsq / (self._level_items * self._item_len))
        self._actor.publish(Level(source=self._source, end=end, rms_db=_db(rms), peak_db=_db(self._level_peak),
                                  clipped=self._level_peak >= 0.999))

    def _stats(self) -> None:
        self._next_stats = time.monotonic() + STATS_EVERY_S
        self._actor.publish(Stats(actor=self._actor.name, counters={
            "items_written": float(self._writer.next_seq),
            "input_overflows": float(self.input_overflows),
        }))


def _db(amplitude: float) -> float:
    return float(20 * np.log10(max(amplitude, 1e-10)))
