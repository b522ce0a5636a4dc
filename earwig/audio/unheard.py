"""The stretches a live source's VAD heard no speech in that are read all the same, as a
file's are (``decoding.file_windows.GapFiller``).

Why: Silero misses speech that Whisper reads. Its recurrent state comes to take a soft,
distant or reverberant second talker for background, and under noise at a talker's level
it hears nothing at all. Measured on the live subset of ``bench wer`` (five recordings,
150 s): of the speech the VAD finds in the clean recordings, 16 % under white noise, 14 %
in a reverberant room and 11 % through a voice codec lay in no utterance of the degraded
copy, almost all of it the second talker of a two-talker recording, whom Silero scores
0.00 there while Whisper, given the audio, writes most of the words. File mode reads every
stretch; live text lost those words (deletions 0.16-0.21 of the words against 0.02-0.05
from the same files).

Live, two rules keep this from reading every second of a quiet evening:

- **near speech it heard**: a stretch is read only within ``REACH_S`` after the end of an
  utterance the VAD heard or before the start of the next one, a conversation in
  progress, when the model is loaded anyway;
- **with sound in it**: at least ``MIN_SOUND_S`` of its chunks ``LOUDER_DB`` over the
  source's noise floor (the ``FLOOR_PERCENTILE`` of the last ``FLOOR_S`` of chunk levels,
  never under ``SILENCE_DB``): a fan, a room's hiss or digital silence is not read. On the
  49 English recordings as recorded and in seven degraded copies, the stretches between
  utterances that held missed speech (90 s of it) all passed, and 133 of the 168 silent
  ones did not.

A stretch goes out as a ``SpeechEnd`` with ``heard`` False, in windows of at most
``max_samples``; the final actor reads it as files read their gaps (``speech_heard``
False: text that would need a hotter decoding is taken for noise), and answers it with a
Final like any utterance. Stretches shorter than ``MIN_STRETCH_S`` lie within the reach
the final pass already reads around an utterance (``vad.MARGIN_S``).
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from earwig.config import SAMPLE_RATE
from earwig.messages import Source, SpeechEnd, SpeechStart

#: Stretches shorter than this are not read as windows of their own (files and live).
MIN_STRETCH_S = 1.0
#: How far from speech the VAD heard a stretch is still read.
REACH_S = 30.0
#: The window of recent chunk levels the noise floor is taken from, and its percentile.
FLOOR_S = 30.0
FLOOR_PERCENTILE = 10
#: A chunk this far over the floor has sound in it; a stretch needs this much such sound.
LOUDER_DB = 6.0
MIN_SOUND_S = 0.25
#: Levels under this (dB of full scale) are silence whatever the floor: digital silence.
SILENCE_DB = -70.0


def tiles(start: int, end: int, min_samples: int, max_samples: int) -> list[tuple[int, int]]:
    """``[start, end)`` in equal pieces of at most ``max_samples``; none if it is shorter
    than ``min_samples``."""
    length = end - start
    if length < min_samples:
        return []
    count = -(-length // max_samples)
    edges = [start + length * i // count for i in range(count + 1)]
    return list(zip(edges, edges[1:]))


def level_db(mean_square: float) -> float:
    """A chunk's level in dB of full scale (digital silence: -120)."""
    return 10 * math.log10(mean_square + 1e-12)


class UnheardStretches:
    """A source's speech events and each VAD chunk's level in; the same events out, with
    the stretches to read as ``SpeechEnd(heard=False)`` before the utterance that ends each.

    ``covered``: everything before it is heard, read, or out of reach. ``quiet`` chunks
    (no utterance in progress and no speech that may become one) move the stretches on;
    a whole window goes out as soon as the audio reaches its end, the rest when the next
    utterance starts or the reach runs out.
    """

    def __init__(self, source: Source, chunk: int, max_samples: int, first_sample: int = 0) -> None:
        self.source, self.chunk_samples, self.max_samples = source, chunk, max_samples
        self.min_samples = int(MIN_STRETCH_S * SAMPLE_RATE)
        self.reach = int(REACH_S * SAMPLE_RATE)
        self.covered = first_sample
        #: The end of the last utterance heard (None: none yet).
        self.heard_until: int | None = None
        #: Recent chunks' (start, level in dB), for the floor and for each stretch's sound.
        self._levels: deque[tuple[int, float]] = deque()
        self._keep = int((max(FLOOR_S, REACH_S) + 2 * MIN_STRETCH_S) * SAMPLE_RATE)
        self._floor_chunks = int(FLOOR_S * SAMPLE_RATE) // chunk
        self._sound_chunks = math.ceil(MIN_SOUND_S * SAMPLE_RATE / chunk)

    def judged(self, at: int, mean_square: float, events: list, quiet: bool) -> list:
        """The chunk at ``at`` (its mean square) was judged, giving ``events``;
        returns them with the stretches due now before them."""
        self._levels.append((at, level_db(mean_square)))
        while self._levels[0][0] < at - self._keep:
            self._levels.popleft()
        out = self.passed(events)
        if quiet:
            out += self._forward(at + self.chunk_samples, closing=False)
        return out

    def passed(self, events: list) -> list:
        """Speech events from anywhere in the VAD (a chunk, a dictation's key, the end): a
        SpeechStart closes the stretch before it, a SpeechEnd moves ``covered`` past it."""
        out = []
        for event in events:
            if isinstance(event, SpeechStart):
                out += self._before(event.start)
            elif isinstance(event, SpeechEnd) and event.heard:
                self.covered = max(self.covered, event.end)
                self.heard_until = event.end
            out.append(event)
        return out

    def resume_after(self, end: int, heard: bool) -> None:
        """A killed predecessor announced up to ``end``, where an utterance (``heard``) or
        a stretch ended."""
        self.covered = max(self.covered, end)
        if heard:
            self.heard_until = end

    def finish(self, end: int) -> list[SpeechEnd]:
        """The source ended at ``end``: what is within reach of the last speech."""
        return self._forward(end, closing=True)

    def _before(self, start: int) -> list[SpeechEnd]:
        """An utterance starts at ``start``: the stretch before it, within reach of the
        speech on either side."""
        out = self._forward(start, closing=True)
        out += self._stretches(max(self.covered, start - self.reach), start)
        self.covered = max(self.covered, start)
        return out

    def _forward(self, now: int, closing: bool) -> list[SpeechEnd]:
        """The stretch after the last heard speech up to ``now``: whole windows, and, once
        ``closing`` or out of reach, the rest."""
        if self.heard_until is None:
            return []
        limit = min(now, self.heard_until + self.reach)
        if closing or limit < now:
            return self._stretches(self.covered, limit) if limit > self.covered else []
        out = []
        while limit - self.covered >= self.max_samples:
            out += self._stretches(self.covered, self.covered + self.max_samples)
        return out

    def _stretches(self, start: int, end: int) -> list[SpeechEnd]:
        """``[start, end)`` in windows, those with sound in them; ``covered`` moves to ``end``
        (a stretch too short to read is left to the next call, which may lengthen it)."""
        pieces = tiles(start, end, self.min_samples, self.max_samples)
        if not pieces:
            return []
        self.covered = max(self.covered, end)
        return [SpeechEnd(source=self.source, start=a, end=b, heard=False) for a, b in pieces if self._sounded(a, b)]

    def _sounded(self, start: int, end: int) -> bool:
        levels = [level for _, level in self._levels]
        floor = max(float(np.percentile(levels[-self._floor_chunks:], FLOOR_PERCENTILE)), SILENCE_DB)
        loud = sum(level >= floor + LOUDER_DB for at, level in self._levels if start <= at < end)
        return loud >= self._sound_chunks
