"""The mel actor: every source's PCM ring in; log-mel frame rings and speech events out.

receive  every CYCLE_S, the PCM items each source's ring holds (read in its own reader
         slot, so a fast replay waits for it; a restart resumes the frames where they stop,
         the VAD where its predecessor had not yet announced what it heard; a
         fast replay is read only as far as the final actor's hold in the frame rings
         allows, so the whole pipeline goes at the pace of its slowest stage);
         SourceEnded from the supervisor, so a replayed file's last frames and utterance
         are closed; DictationStart / DictationStop: the key, not silence, bounds the mic's
         utterance meanwhile; SpeechStart after a restart: the utterance that was open when
         the last mel process died, which this one carries on; SpeechEnd after a restart:
         the last utterance it announced, which this one's VAD does not hear again
compute  log-mel frames for every bin count the models need (one shared STFT per hop,
         ``audio.log_mel.LogMelStream``), and Silero VAD per source (``audio.vad``)
         (the mic cleaned of the speakers' echo first, ``actors/mel_echo``, when on)
publish  one frame per ring item in ``mel{bins}-{source}`` (item ``t`` is the frame centred
         on sample ``160 t``, stamped with the capture time of its last sample);
         SpeechStart / SpeechEnd with sample positions (under ``earwig dictate``, those of
         the mic's utterances inside a dictation only, ``actors/mel_dictated``); a
         SpeechEnd with ``heard`` False alone for a stretch near speech that the VAD did not
         hear but that has sound in it, read all the same (``audio.unheard``);
         DictationSpan once a dictation's utterance is closed (at the release, or where
         the audio ends); Stats; EchoState of the mic's echo canceller

Why one process for both: they read the same samples at the same pace, and the STFT is
shared by every bin count, so one reader per source does all of it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import numpy as np
import torch

from earwig.actors.mel_dictated import DictatedOnly
from earwig.actors.mel_echo import MicEchoStage
from earwig.actors.runtime import Actor
from earwig.audio.log_mel import HALF_WINDOW, HOP, LogMelStream
from earwig.audio.vad import CHUNK, WARM_UP_S, VoiceActivity
from earwig.compute import torch_device
from earwig.config import SAMPLE_RATE, VadConfig
from earwig.messages import (DictationSpan, DictationStart, DictationStop, Source, SourceEnded, SpeechEnd, SpeechStart,
                             Stats)
from earwig.shm import Batch, Ring

#: The PCM rings' reader slot the mel actor announces its cursor in.
PCM_READER_SLOT = 0
STATS_EVERY_S = 2.0
#: One pass over every source this often. Each pass costs a fixed overhead (waking up
#: with cold caches, one STFT call, one VAD call) that dwarfs the per-hop work: on the
#: 2-core VM the live actor used 7.4 % of a core at 32 ms, 4.9 % at 64 ms, 3.4 % at 100 ms
#: (profiling/README.md). 100 ms is the preview's granularity anyway (it runs every 250 ms).
CYCLE_S = 0.1
#: A paced replay's most audio per cycle: twenty times real time, far faster than the models
#: go, and slow enough that the final actor's hold on a new utterance (its SpeechStart
#: travels through the supervisor) is in place long before the ring could lap it.
PACED_MAX_S = 2.0


@dataclass(frozen=True)
class MelSource:
    source: Source
    pcm_ring: str
    #: Frame ring of each bin count: ``{80: name, 128: name}``.
    mel_rings: dict[int, str]
    #: A replayed file: its last PCM item is zero-padded, so frames wait one item.
    replay: bool = False
    #: A replay as fast as its readers take it: the frames stay within half a ring of the
    #: oldest frame a reader still needs (the final actor's hold), so none is overwritten
    #: unread; this reader's PCM cursor then holds the replay back in turn.
    paced: bool = False
    #: The speakers' PCM ring, whose sound is taken out of this source (the mic's echo
    #: cancellation, ``actors/mel_echo``); empty: none.
    echo_reference: str = ""
    #: Announce only the utterances said inside a dictation (``actors/mel_dictated``).
    only_dictated: bool = False


@dataclass(frozen=True)
class MelParams:
    sources: tuple[MelSource, ...]
    vad: VadConfig
    #: "auto" (CUDA when PyTorch sees a GPU), "cpu", "cuda" or "cuda:N".
    device: str = "auto"


#: The supervisor's word that a replay ended, of an open utterance and of the last one
#: ended (after a restart: this actor's own), and of a dictation's key going down and up
#: (its span is cut at those positions).
LISTENS = (SourceEnded, SpeechStart, SpeechEnd, DictationStart, DictationStop)


async def main(actor: Actor) -> None:
    params: MelParams = actor.params
    torch.set_num_threads(1)  # a cycle's few hops are tiny; more threads only add wake-ups
    device = torch_device(params.device)
    streams = {s.source: _SourceStream(actor, s, params.vad, device) for s in params.sources}

    def ended(message: SourceEnded) -> None:
        if message.source in streams:
            streams[message.source].ended_at = message.end

    def resume(message: SpeechStart) -> None:
        if message.source in streams:
            streams[message.source].resume_utterance(message.start)

    def resume_after(message: SpeechEnd) -> None:
        if message.source in streams:
            streams[message.source].resume_after(message.end, message.heard)

    def dictate(message: DictationStart | DictationStop) -> None:
        if "mic" in streams:
            streams["mic"].dictation.append(message)

    handlers = {SourceEnded: ended, SpeechStart: resume, SpeechEnd: resume_after, DictationStart: dictate,
                DictationStop: dictate}
    try:
        await actor.serve(handlers, _frames_and_speech(actor, streams))
    finally:
        for stream in streams.values():
            stream.close()


async def _frames_and_speech(actor: Actor, streams: dict[Source, _SourceStream]) -> None:
    loop = asyncio.get_running_loop()
    # The first cycle waits one period: after a restart, the supervisor's word of an
    # open utterance (SpeechStart) and of the last one ended (SpeechEnd) is already in
    # the pipe and must come first.
    due = loop.time() + CYCLE_S
    await asyncio.sleep(CYCLE_S)
    while not actor.stopping.is_set() and not all(s.done for s in streams.values()):
        for stream in streams.values():
            stream.process_available()
        due = max(due + CYCLE_S, loop.time())
        await asyncio.sleep(due - loop.time())
    for stream in streams.values():  # told to stop: what was being said still gets its Final
        stream.end_utterance()


class _SourceStream:
    """One source: its PCM reader, its frame computer and VAD, its frame ring writers."""

    def __init__(self, actor: Actor, source: MelSource, vad: VadConfig, device: torch.device) -> None:
        self._actor, self.source = actor, source.source
        self._pcm = Ring.attach(source.pcm_ring)
        self._mel = {bins: Ring.attach(name) for bins, name in source.mel_rings.items()}
        self._writers = {bins: ring.writer() for bins, ring in self._mel.items()}
        first_frame = min(writer.next_seq for writer in self._writers.values())
        self._item_len = self._pcm.spec.item_len
        self._frames = LogMelStream(list(self._writers), device, first_frame,
                                    holdback=self._item_len if source.replay else 0)
        # A killed predecessor left in its reader slot where its VAD had not yet announced
        # what it heard (``VoiceActivity.resume_from``): the VAD begins there, the frames
        # where they stop.
        stored = self._pcm.slot_cursor(PCM_READER_SLOT)
        start = self._frames.needs_sample
        read_from = start
        if stored is not None:
            start = min(start, stored * self._item_len)
            read_from = max(0, start - int(WARM_UP_S * SAMPLE_RATE))
        self._reader = self._pcm.reader(PCM_READER_SLOT, read_from // self._item_len, announces_reads=False)
        self._paced = source.paced
        self._echo = MicEchoStage(source.echo_reference, self._pcm) if source.echo_reference else None
        self._vad = VoiceActivity(self.source, vad, start, unheard=vad.read_unheard and not source.only_dictated)
        self.ended_at: int | None = None
        #: Dictation's key presses and releases, applied in order once the VAD reaches them.
        self.dictation: list[DictationStart | DictationStop] = []
        self._dictated = DictatedOnly() if source.only_dictated else None
        self.done = False
        self._next_stats = 0.0
        self._frames_cpu_s = self._vad_cpu_s = 0.0

    def process_available(self) -> None:
        """Everything the ring holds now; the source's last frames once it has ended."""
        if self.done:
            return
        room = self._room()
        if room != 0:
            self._process(self._reader.read(room))
        self._dictate()
        if self.ended_at is not None and self._reader.position * self._item_len >= self.ended_at:
            self._publish_frames(self._frames.finish(self.ended_at), None)
            self._release_dictation(self.ended_at)
            self._publish_events(self._vad.finish(self.ended_at))
            self.done = True
        if self.done or time.monotonic() >= self._next_stats:
            self._stats()

    def _room(self) -> int | None:
        """How many PCM items may be read now: any (None) unless paced; paced, what keeps
        every frame ring within half a ring of its readers' oldest held frame."""
        if self._echo is not None:
            return self._echo.readable(self._reader.position, self._reader.available())
        if not self._paced:
            return None
        frames = min(ring.spec.capacity // 2 - (writer.next_seq - min(ring.reader_cursors(), default=writer.next_seq))
                     for ring, writer in zip(self._mel.values(), self._writers.values()))
        return max(0, min(frames * HOP, int(PACED_MAX_S * SAMPLE_RATE)) // self._item_len)

    # --- compute ----------------------------------------------------------------------

    def _process(self, batch: Batch | None) -> None:
        if batch is None:
            return
        at = batch.seq * self._item_len
        samples = batch.data.reshape(-1)
        if batch.lost and at > self._frames.needs_sample:
            self._publish_frames(self._frames.skip_to(at), None)
        heard = samples
        if self._echo is not None:
            uncleaned = not self._echo.cleaned_from
            clean = self._echo.clean(samples, at, batch, talking=self._vad.segmenter.active)
            samples, heard = clean.frames, clean.vad
            if uncleaned and self._echo.cleaned_from:  # said before the speech events it bears on
                self._actor.publish(self._echo.state())
        # A resumed stream's frames start inside an item, and may start after its VAD.
        samples = samples[max(0, self._frames.needs_sample - at):]
        started = time.thread_time()
        self._publish_frames(self._frames.push(samples), batch)
        frames_done = time.thread_time()
        self._publish_events(self._vad.push(heard, at))
        self._reader.hold(self._vad.resume_from // self._item_len)
        self._frames_cpu_s += frames_done - started
        self._vad_cpu_s += time.thread_time() - frames_done

    def end_utterance(self) -> None:
        """The session ends: close the utterance in progress where the audio read so far ends."""
        if not self.done:
            self._process(self._reader.read())
            self._release_dictation(self._reader.position * self._item_len)
            self._publish_events(self._vad.finish(self._reader.position * self._item_len))

    def resume_utterance(self, start: int) -> None:
        """Carry on an utterance a killed mel process had started (its SpeechStart went out)."""
        self._vad.resume_utterance(start)
        if self._dictated is not None:
            self._dictated.resumed(start)

    def resume_after(self, end: int, heard: bool) -> None:
        """The last utterance (or unheard stretch) a killed mel process announced ended at ``end``."""
        self._vad.resume_after(end, heard)

    def _dictate(self) -> None:
        """Hold the utterance at a key press; close it at the release once the VAD has
        judged every whole chunk before it (the ring may not hold the release's audio yet)."""
        segmenter = self._vad.segmenter
        while self.dictation:
            message = self.dictation[0]
            if isinstance(message, DictationStart):
                self._publish_events(self._vad.hold(message.start))
            elif segmenter.held_from != message.start:
                pass  # a second stop (a restarted dictation actor's) of one already released
            elif self._vad.processed > message.end - CHUNK or self.ended_at is not None:
                events, utterances = self._vad.release(message.end)
                self._publish_events([*events, DictationSpan(start=message.start, end=message.end,
                                                             utterances=utterances)])
            else:
                return
            self.dictation.pop(0)

    def _release_dictation(self, at: int) -> None:
        """The audio ends (a replay's file, the session) while a dictation holds the
        utterance open: the dictation ends there, or its release would never come (this
        process exits) and the dictation would wait for its text for ever."""
        segmenter = self._vad.segmenter
        if segmenter.held_from is None:
            return
        start = segmenter.held_from
        events, utterances = self._vad.release(at)
        self._publish_events([*events, DictationSpan(start=start, end=at, utterances=utterances)])
        self.dictation.clear()

    # --- publish ----------------------------------------------------------------------

    def _publish_frames(self, frames: dict[int, np.ndarray], batch: Batch | None) -> None:
        for bins, block in frames.items():
            writer = self._writers[bins]
            first = self._frames.next_frame - len(block)
            block = block[max(0, writer.next_seq - first):]  # a ring ahead after a crash
            if len(block):
                writer.write(block, self._stamps(writer.next_seq, len(block), batch))

    def _stamps(self, first_frame: int, count: int, batch: Batch | None) -> np.ndarray | None:
        """Capture time of each frame's last sample: end-to-end latency starts there."""
        if batch is None:
            return None
        last_sample = np.arange(first_frame, first_frame + count) * HOP + HALF_WINDOW - 1
        index = np.minimum(np.maximum(last_sample // self._item_len - batch.seq, 0), len(batch.time_ns) - 1)
        return batch.time_ns[index]

    def _publish_events(self, events: list) -> None:
        if self._dictated is not None:
            events = self._dictated.passed(events, self._vad.segmenter.held_from)
        for event in events:
            self._actor.publish(event)

    def _stats(self) -> None:
        self._next_stats = time.monotonic() + STATS_EVERY_S
        self._actor.publish(Stats(actor=self._actor.name, counters={
            f"{self.source}_frames": float(self._frames.next_frame),
            f"{self.source}_vad_chunks": float(self._vad.chunks),
            f"{self.source}_pcm_overruns": float(self._reader.overruns),
            # A replay read to its end: later than its SourceEnded (capture wrote it all),
            # which a fast replay sends while much of it is still unread.
            f"{self.source}_read_to_end": float(self.done),
            f"{self.source}_frames_cpu_s": self._frames_cpu_s,
            f"{self.source}_vad_cpu_s": self._vad_cpu_s,
            **({f"{self.source}_echo_cpu_s": self._echo.cpu_s} if self._echo else {}),
            "cpu_s": time.process_time(),
        }))
        if self._echo is not None:
            self._actor.publish(self._echo.state())

    def close(self) -> None:
        if self._echo is not None:
            self._echo.close()
        self._reader.release_slot()
        for ring in (self._pcm, *self._mel.values()):
            ring.close()
