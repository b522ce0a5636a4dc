"""A line transcribed again because the user asked (``Retry``): more carefully than live,
since the user waits for this one line and nothing else. Beam search over the line, with
what its source said before it as the prompt, by ``models.retry`` (a larger model where
the machine has one: ``ModelSession.retry_model``).

Where its audio comes from: the source's PCM ring while it holds the line (two minutes by
default), else the session's kept audio, whose frame ``n`` is sample ``n`` of the source:
either way the line is read as it was captured. The frames are computed here for that
audio alone, as the mel actor would, since the retry model may read another bin count than
the frame rings hold.

Why the line alone, from its first sample to its last: the VAD's span already has its
lead-in. Read with 2 s of what came before (as a fragment is live), base's text got worse,
not better (``bench retry``, 44 lines: WER 0.066 against 0.044 live): the first word's time
fell before the line and was dropped, and a line was said twice over.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np

from earwig.audio.log_mel import log_mel
from earwig.decoding.hallucinations import kept_final
from earwig.decoding.model import LoadedModel
from earwig.decoding.transcribe import Window, transcribe
from earwig.errors import EarwigError
from earwig.messages import Final, Retry
from earwig.playback import kept_samples
from earwig.shm import Ring

#: Whisper's beam width for a retry: what ``whisper --beam_size`` is usually given.
BEAM_SIZE = 5


def line_samples(retry: Retry, pcm_ring: str | None) -> np.ndarray:
    """The line's samples: from the ring while it holds them, else from the kept audio; one
    clear error where neither does."""
    if pcm_ring is not None:
        ring = Ring.attach(pcm_ring)
        try:
            samples = ring.samples(retry.start, retry.end)
            if samples is not None:
                return samples.copy()
        finally:
            ring.close()
    if not retry.audio:
        raise EarwigError(f"its audio is gone: the {retry.source} ring no longer holds it and this session "
                          "keeps no audio",
                          "retry a line of the last two minutes (ring_seconds), or run with --keep-audio")
    return kept_samples(Path(retry.audio), retry.start, retry.end)


def retried(model: LoadedModel, retry: Retry, samples: np.ndarray) -> Final:
    """The line's new Final, marked ``revised``."""
    frames = log_mel(samples, model.whisper.dims.n_mels)
    [transcript] = transcribe(model, [Window(frames, context=retry.prompt)], beam_size=BEAM_SIZE)
    return msgspec.structs.replace(kept_final(retry.source, retry.start, retry.end, transcript), revised=True)
