"""A line read again (``actors/final_retry``): from the ring while it holds the line, else
from the session's kept audio, by a real Whisper model with beam search; a line whose audio
is gone says so instead of reading silence."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
import torch

from earwig import model_store
from earwig.actors.final_retry import line_samples, retried
from earwig.audio.files import read_audio
from earwig.config import SAMPLE_RATE
from earwig.decoding.model import LoadedModel
from earwig.errors import EarwigError
from earwig.messages import Retry
from earwig.profiling.harness import REAL_AUDIO, manifest_references
from earwig.profiling.harness.scoring import word_error_rate
from earwig.shm import Ring, RingSpec

pytestmark = pytest.mark.model

#: 10.4 s of LibriSpeech, said after 3 s of silence in the session's audio.
LINE = "librispeech_test-clean_1089-134686-0000.flac"
START = 3 * SAMPLE_RATE


@pytest.fixture(scope="module")
def session_audio(tmp_path_factory):
    said = read_audio(REAL_AUDIO / LINE)
    audio = np.concatenate((np.zeros(START, np.float32), said, np.zeros(SAMPLE_RATE, np.float32)))
    path = tmp_path_factory.mktemp("session") / "20261203-060000-1-mic.flac"
    soundfile.write(path, audio, SAMPLE_RATE, subtype="PCM_16")
    return path, audio, Retry(source="mic", start=START, end=START + len(said), audio=str(path))


def test_a_line_is_read_again_from_the_kept_audio_by_beam_search_and_keeps_its_span(session_audio):
    path, audio, retry = session_audio
    samples = line_samples(retry, pcm_ring=None)
    assert np.abs(samples - audio[retry.start:retry.end]).max() < 1e-4  # 16-bit FLAC
    final = retried(LoadedModel(model_store.load("base"), torch.device("cpu")), retry, samples)
    assert final.revised and (final.source, final.start, final.end) == ("mic", retry.start, retry.end)
    assert word_error_rate(manifest_references()[LINE], final.text) <= 0.1, final.text
    assert final.words and all(retry.start <= (w.start + w.end) // 2 < retry.end for w in final.words)


def test_the_ring_is_read_while_it_holds_the_line_and_the_file_after(session_audio, ring_prefix):
    path, audio, retry = session_audio
    ring = Ring.create(RingSpec(f"{ring_prefix}pcm", 2048, 160))
    try:
        ring.writer().write(np.where(audio[:len(audio) // 160 * 160] != 0, 0.5, 0.25).reshape(-1, 160))
        samples = line_samples(retry, ring.spec.name)  # the ring's, not the file's
        assert len(samples) == retry.end - retry.start and set(np.unique(samples)) <= {0.25, 0.5}
        ring.writer().write(np.zeros((2048, 160), np.float32))  # the line leaves the ring
        samples = line_samples(retry, ring.spec.name)
        assert np.abs(samples - audio[retry.start:retry.end]).max() < 1e-4
    finally:
        ring.close()
        ring.unlink()


def test_a_line_whose_audio_is_gone_says_so(session_audio, tmp_path):
    path, audio, retry = session_audio
    with pytest.raises(EarwigError, match="its audio is gone") as no_audio:
        line_samples(Retry(source="mic", start=START, end=START + 100), pcm_ring=None)
    assert "--keep-audio" in no_audio.value.fix
    with pytest.raises(EarwigError, match="audio of this line is gone"):
        line_samples(Retry(source="mic", start=START, end=START + 100, audio=str(tmp_path / "deleted.flac")), None)
    with pytest.raises(EarwigError, match="ends before"):
        line_samples(Retry(source="mic", start=len(audio) + 5 * SAMPLE_RATE, end=len(audio) + 6 * SAMPLE_RATE,
                           audio=str(path)), None)
