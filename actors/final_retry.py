"""A line transcribed again because the user asked (``Retry``): more carefully than live,
since the user waits for this one line and nothing else. Beam search over the line, with
what its source said before it as the prompt, by ``models.retry`` (a larger model where
the machine has one: ``ModelSession.retry_model``).

Where its audio comes from: the source's PCM ring while it holds the line (two minutes by
default), else the session's kept audio, whose frame ``n`` is sample ``n`` of the source:
either way the line is read as it was captured. The frames are computed here for that
audio alone, as the mel actor would, since the retry model may read another bin count than
the frame rings hold.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np

from earwig.audio.log_mel import log_mel
from earwig.audio.vad import MARGIN_S
from earwig.config import SAMPLE_RATE
from earwig.decoding.hallucinations import kept_final
from earwig.decoding.model import LoadedModel
from earwig.decoding.transcribe import Window, transcribe
from earwig.errors import EarwigError
from earwig.messages import Final, Retry
from earwig.playback import kept_samples
from earwig.shm import Ring

#: Whisper's beam width for a retry: what ``whisper --beam_size`` is usually given.
BEAM_SIZE = 5
#: Audio read before the line, as a file's windows are widened: soft speech before its first
#: loud word is speech too. Words centred before the line's start are not its own.
READ_BEFORE_S = MARGIN_S


def line_samples(retry: Retry, pcm_ring: str | None) -> tuple[int, np.ndarray]:
    """Where the line's reading starts, and its samples from there to the line's end: from
    the ring while it holds them, else from the kept audio; one clear error where neither
    does."""
    read_from = max(0, retry.start - int(READ_BEFORE_S * SAMPLE_RATE))
    if pcm_ring is not None:
        ring = Ring.attach(pcm_ring)
        try:
            samples = ring.samples(read_from, retry.end)
            if samples is None:  # the reading's head is gone: the line alone may not be
                read_from, samples = retry.start, ring.samples(retry.start, retry.end)
            if samples is not None:
                return read_from, samples.copy()
        finally:
            ring.close()
    if not retry.audio:
        raise EarwigError(f"its audio is gone: the {retry.source} ring no longer holds it and this session "
                          "keeps no audio",
                          "retry a line of the last two minutes (ring_seconds), or run with --keep-audio")
    read_from = max(0, retry.start - int(READ_BEFORE_S * SAMPLE_RATE))
    return read_from, kept_samples(Path(retry.audio), read_from, retry.end)


def retried(model: LoadedModel, retry: Retry, read_from: int, samples: np.ndarray) -> Final:
    """The line's new Final, marked ``revised``: words centred before its start belong to
    the line before it."""
    frames = log_mel(samples, model.whisper.dims.n_mels)
    [transcript] = transcribe(model, [Window(frames, context=retry.prompt)], beam_size=BEAM_SIZE)
    final = kept_final(retry.source, retry.start, retry.end, transcript, read_from=read_from,
                       own_from=retry.start)
    return msgspec.structs.replace(final, revised=True)
