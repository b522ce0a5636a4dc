"""The real mel actor process on replayed audio: frames, speech events, restarts."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from dataclasses import dataclass, field

import numpy as np
import pytest
import soundfile
import torch

from earwig.audio.files import read_audio
from earwig.audio.vad import CHUNK
from earwig.config import Config, ModelsConfig, SourceConfig, VadConfig
from earwig.actors.model_session import HOLDING_SLOT
from earwig.messages import ActorFailed, SourceEnded, SpeechEnd, SpeechStart, Stats
from earwig.actors.mel import MelSource, _SourceStream
from earwig.audio.log_mel import HOP
from earwig.shm import Ring, RingSpec
from earwig.supervisor.plan import listen_plan, mel_ring_name, ring_capacity
from earwig.supervisor.supervisor import Supervisor
from whisper_reference import assert_equal_to_whisper

pytestmark = pytest.mark.pipeline

RATE = 16000
BOUNDARY_TOLERANCE = int(0.150 * RATE)


def trimmed(audio: np.ndarray) -> np.ndarray:
    """A sentence without espeak-ng's leading and trailing silence: its true boundaries."""
    loud = np.flatnonzero(np.abs(audio) > 0.01)
    return audio[loud[0]:loud[-1] + 1]


@dataclass
class Listened:
    frames: dict[int, np.ndarray]
    lost: int
    events: list = field(default_factory=list)
    restarts: int = 0

    def speech(self) -> list[SpeechStart | SpeechEnd]:
        return [e for e in self.events if isinstance(e, (SpeechStart, SpeechEnd))]

    def utterances(self) -> list[SpeechEnd]:
        return [e for e in self.events if isinstance(e, SpeechEnd)]


async def listen(prefix, path, *, ring_seconds=120.0, final="base", kill_mel_at_frame=None,
                 timeout=120.0) -> Listened:
    """Replay ``path`` as the microphone through capture and mel, as fast as mel reads it;
    collect every frame of every bin count and every message until the mel actor finishes."""
    config = Config(mic=SourceConfig(replay=str(path), realtime=False),
                    speakers=SourceConfig(enabled=False), models=ModelsConfig(preview="tiny.en", final=final))
    config.ring_seconds = ring_seconds  # set, not validated: a ring shorter than a user may ask for
    plan = listen_plan(config, prefix)
    bins = sorted(spec.item_len for spec in plan.rings if "-mel" in spec.name)
    async with Supervisor(plan.rings, plan.actors) as supervisor:
        events = supervisor.subscribe()
        readers = {b: supervisor.rings[mel_ring_name(prefix, "mic", b)].reader(start=0) for b in bins}
        frames: dict[int, list[np.ndarray]] = {b: [] for b in bins}
        result = Listened({}, 0)
        deadline = time.monotonic() + timeout
        ended = False
        while True:
            for b, reader in readers.items():
                if (batch := reader.read()) is not None:
                    frames[b].append(batch.data)
                    result.lost += batch.lost
            while not events.empty():
                message = events.get_nowait()
                result.events.append(message)
                ended |= isinstance(message, SourceEnded)
            if kill_mel_at_frame is not None and readers[bins[0]].position >= kill_mel_at_frame:
                os.kill(supervisor.pid("mel"), signal.SIGKILL)
                kill_mel_at_frame = None
            if ended and supervisor.finished("mel") and not any(r.available() for r in readers.values()):
                break
            assert time.monotonic() < deadline, "the mel actor did not finish"
            await asyncio.sleep(0.002)
        result.restarts = supervisor.restarts("mel")
    result.frames = {b: np.concatenate(f) for b, f in frames.items()}
    return result


@pytest.fixture(scope="module")
def sentences(tmp_path_factory, speech):
    """Two sentences between silences, over a low noise floor; and where each sentence is."""
    rng = np.random.default_rng(3)
    said = [trimmed(read_audio(speech[k])) for k in ("a", "b")]
    silence = np.zeros(2 * RATE, np.float32)
    parts, truth, at = [], [], 0
    for sentence in said:
        parts += [silence, sentence]
        truth.append((at + len(silence), at + len(silence) + len(sentence)))
        at += len(silence) + len(sentence)
    audio = np.concatenate(parts + [silence])
    audio += rng.normal(0, 0.002, len(audio)).astype(np.float32)
    path = tmp_path_factory.mktemp("mel") / "sentences.wav"
    soundfile.write(path, audio, RATE, subtype="FLOAT")
    return path, audio, truth


def test_frames_through_the_actor_equal_whisper_across_ring_wraparound(ring_prefix, sentences):
    path, audio, _ = sentences
    # Two-second rings: the PCM and frame rings both wrap around several times.
    listened = asyncio.run(listen(ring_prefix, path, ring_seconds=2.0, final="large-v3"))
    assert listened.lost == 0 and listened.restarts == 0
    assert sorted(listened.frames) == [80, 128]
    for bins, frames in listened.frames.items():
        assert len(frames) > 4 * 256
        assert_equal_to_whisper(frames, audio, bins)


def test_speech_events_carry_the_true_sentence_boundaries(ring_prefix, sentences):
    path, audio, truth = sentences
    listened = asyncio.run(listen(ring_prefix, path))
    speech = listened.speech()
    assert [type(e) for e in speech] == [SpeechStart, SpeechEnd] * len(truth)
    vad = VadConfig()  # the utterance carries its lead-in before the speech and its pad after
    for (start, end), event in zip(truth, listened.utterances()):
        assert abs(vad.onset(event.start) - start) <= BOUNDARY_TOLERANCE, (event, start)
        assert abs(event.end - vad.pad_ms * RATE // 1000 - end) <= BOUNDARY_TOLERANCE, (event, end)
        assert not event.cut
    assert all(e.source == "mic" for e in speech)


def test_no_speech_events_on_thirty_seconds_of_silence_and_low_noise(ring_prefix, tmp_path):
    rng = np.random.default_rng(5)
    audio = np.concatenate((np.zeros(10 * RATE, np.float32),
                            rng.normal(0, 0.003, 10 * RATE).astype(np.float32),  # about -50 dBFS
                            rng.normal(0, 0.01, 10 * RATE).astype(np.float32)))  # about -40 dBFS
    path = tmp_path / "quiet.wav"
    soundfile.write(path, audio, RATE, subtype="FLOAT")
    listened = asyncio.run(listen(ring_prefix, path))
    assert len(listened.frames[80]) == len(audio) // 160  # it did run over all of it
    assert listened.speech() == []


@pytest.fixture(scope="module")
def run_on_speech(tmp_path_factory, speech):
    """About 47 s of speech whose only pauses are 100 ms gaps between sentences."""
    said = [trimmed(read_audio(speech[k])) for k in ("a", "b")]
    gap = np.zeros(RATE // 10, np.float32)
    parts, gaps, at = [], [], 0
    for i in range(12):
        parts += [said[i % 2], gap]
        at += len(said[i % 2])
        gaps.append((at, at + len(gap)))
        at += len(gap)
    path = tmp_path_factory.mktemp("long") / "run_on.wav"
    soundfile.write(path, np.concatenate(parts), RATE, subtype="FLOAT")
    return path, gaps, at


def test_a_long_utterance_is_cut_at_a_pause_and_goes_on(ring_prefix, run_on_speech):
    path, gaps, length = run_on_speech
    listened = asyncio.run(listen(ring_prefix, path))
    utterances = listened.utterances()
    assert len(utterances) >= 2
    assert utterances[0].cut
    assert all(u.end - u.start <= 25 * RATE for u in utterances)
    for before, after in zip(utterances, utterances[1:]):
        if before.cut:  # the next utterance goes on exactly where the cut was
            assert after.start == before.end
            assert any(start <= before.end < end for start, end in gaps), "cut inside a word"
    assert utterances[-1].end >= length - CHUNK - 0.1 * RATE and not utterances[-1].cut


def test_a_killed_mel_actor_resumes_with_no_gap_and_no_repeat(ring_prefix, sentences):
    path, audio, _ = sentences
    listened = asyncio.run(listen(ring_prefix, path, kill_mel_at_frame=300))
    assert listened.restarts == 1
    assert listened.lost == 0
    assert any(isinstance(e, ActorFailed) and e.actor == "mel" and not e.fatal for e in listened.events)
    assert_equal_to_whisper(listened.frames[80], audio, 80)


def test_a_fast_replay_goes_no_further_than_half_a_ring_past_the_oldest_frame_held(ring_prefix, tmp_path):
    """What the final actor does to pace a fast replay to itself: hold the oldest frame it
    still needs. The mel actor stops half a frame ring past it (and the replay waits for the
    mel actor), and goes on to the end once the hold is let go."""
    audio = np.random.default_rng(7).normal(0, 0.003, 60 * RATE).astype(np.float32)
    path = tmp_path / "minute.wav"
    soundfile.write(path, audio, RATE, subtype="FLOAT")
    config = Config(mic=SourceConfig(replay=str(path), realtime=False), speakers=SourceConfig(enabled=False),
                    models=ModelsConfig(preview="tiny.en", final="base"))
    config.ring_seconds = 10.0  # set, not validated: a ring shorter than a user may ask for
    plan = listen_plan(config, ring_prefix)

    async def run() -> tuple[int, int, int]:
        async with Supervisor(plan.rings, plan.actors) as supervisor:
            events = supervisor.subscribe()
            ring = supervisor.rings[mel_ring_name(ring_prefix, "mic", 80)]
            # Held before the mel process has imported anything, let alone written a frame.
            holder = ring.reader(HOLDING_SLOT, start=0)
            holder.hold(0)
            half = ring.spec.capacity // 2
            deadline = time.monotonic() + 120
            while ring.published < half:
                assert time.monotonic() < deadline, "the mel actor did not start"
                await asyncio.sleep(0.01)
            stats = 0
            while stats < 2:  # two reports of the mel actor: many cycles went by, held
                stats += isinstance(await asyncio.wait_for(events.get(), 120), Stats)
            held_at = ring.published
            holder.hold(None)
            while not supervisor.finished("mel"):
                assert time.monotonic() < deadline + 120, "the mel actor did not finish"
                await asyncio.sleep(0.05)
            return half, held_at, ring.published

    half, held_at, finished_at = asyncio.run(run())
    assert half <= held_at <= half + 1
    assert finished_at >= len(audio) // 160 - 1  # every frame, once let go



class _Published:
    """Stands in for the actor runtime: keeps what the mel stream publishes."""

    name = "mel"

    def __init__(self) -> None:
        self.messages: list = []

    def publish(self, message) -> None:
        self.messages.append(message)

    def told_again(self, stream: _SourceStream) -> None:
        """What the supervisor tells a restarted mel actor (``supervisor.router``): the last
        utterance ended, and the one announced and not ended."""
        ends = [m for m in self.messages if isinstance(m, SpeechEnd)]
        starts = [m for m in self.messages if isinstance(m, SpeechStart)]
        if ends:
            stream.resume_after(ends[-1].end, ends[-1].heard)
        if starts and (not ends or starts[-1].start >= ends[-1].end):
            stream.resume_utterance(starts[-1].start)


class _Killed(Exception):
    pass


def _kill(*_) -> None:
    raise _Killed


@pytest.mark.parametrize("before", ["events", "slot"])
def test_a_mel_process_killed_mid_cycle_leaves_its_successor_to_announce_what_it_had_not(
        ring_prefix, sentences, before):
    """A kill lands after a cycle's frames went out and before its speech events did (the
    VAD runs last), or after the events and before the reader slot says where a successor's
    VAD must begin. Either way the next process announces the same utterances as one that
    was never killed, none twice: it hears again the speech its predecessor had not
    announced, not only the audio after the frames (the chaos test once saw the first
    0.96 s of a sentence lost that way, and the final model read the rest as a
    hallucination), and nothing before the last utterance announced."""
    _, audio, truth = sentences
    config = Config()
    item = config.block_samples
    spec = RingSpec(f"{ring_prefix}pcm", ring_capacity(60.0, item), item)
    frames_spec = RingSpec(f"{ring_prefix}mel80", ring_capacity(60.0, HOP), 80)
    whole = audio[:len(audio) // item * item].reshape(-1, item)
    per_cycle = RATE // 10 // item  # what a live cycle reads

    def run(kill_in: int | None) -> tuple[list, list[int]]:
        """The speech events, and the cycle each came out in; killed in cycle ``kill_in``."""
        pcm, frame_ring = Ring.create(spec), Ring.create(frames_spec)
        source = MelSource("mic", spec.name, {80: frames_spec.name})
        published = _Published()
        writer, cycles = pcm.writer(), []
        try:
            stream = _SourceStream(published, source, config.vad, torch.device("cpu"))
            for cycle, at in enumerate(range(0, len(whole), per_cycle)):
                writer.write(whole[at:at + per_cycle])
                if cycle == kill_in:
                    if before == "events":
                        stream._publish_events = _kill
                    else:
                        stream._reader.hold = _kill
                    with pytest.raises(_Killed):
                        stream.process_available()
                    stream = _SourceStream(published, source, config.vad, torch.device("cpu"))
                    published.told_again(stream)
                stream.process_available()
                cycles += [cycle] * (len(published.messages) - len(cycles))
            stream.end_utterance()
            stream.close()
        finally:
            for ring in (pcm, frame_ring):
                ring.close()
                ring.unlink()
        return [m for m in published.messages if isinstance(m, (SpeechStart, SpeechEnd))], cycles

    heard_through, cycles = run(None)
    assert [type(e) for e in heard_through] == [SpeechStart, SpeechEnd] * len(truth)
    # Killed in each cycle that announced something, and in the one before it (speech heard
    # and not yet long enough to count, silence not yet long enough to end an utterance).
    for kill_in in sorted({c - k for c in cycles for k in (0, 1)}):
        heard, _ = run(kill_in)
        # A VAD begun afresh (Silero's state is per process) may place a boundary a chunk off.
        assert [type(e) for e in heard] == [type(e) for e in heard_through], (kill_in, heard)
        for got, want in zip(heard, heard_through):
            assert abs(got.start - want.start) <= 2 * CHUNK, (kill_in, heard, heard_through)
            assert abs(getattr(got, "end", 0) - getattr(want, "end", 0)) <= 2 * CHUNK, (kill_in, heard, heard_through)
