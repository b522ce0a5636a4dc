"""The encoder's window lengths, on base and real speech: a few shapes whatever the
utterances' lengths (a new shape costs the model actors memory that is not given back), and
an utterance's text read at its own length, whoever shares its batch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from earwig import model_store
from earwig.audio.files import read_audio
from earwig.audio.log_mel import bins_for_model, log_mel
from earwig.decoding.model import BUCKET_FRAMES, PAD_FRAMES, LoadedModel, padded_length
from earwig.decoding.transcribe import Window, transcribe

REAL = Path(__file__).resolve().parents[2] / "shared" / "audio" / "real"
#: 10.4 s and 3.3 s of LibriSpeech: two utterances of different encoder windows.
LONG, SHORT = "librispeech_test-clean_1089-134686-0000.flac", "librispeech_test-clean_1089-134686-0001.flac"


@pytest.fixture(scope="module")
def base() -> LoadedModel:
    return LoadedModel(model_store.load("base"), torch.device("cpu"))


@pytest.fixture(scope="module")
def frames():
    return {name: log_mel(read_audio(REAL / name), bins_for_model("base")) for name in (LONG, SHORT)}


@pytest.mark.pure
def test_every_length_of_speech_gets_one_of_a_few_windows_with_the_silence_after_it():
    lengths = {frames: padded_length(frames) for frames in range(1, 3001)}
    assert len(set(lengths.values())) <= 3000 // BUCKET_FRAMES
    for frames, window in lengths.items():
        assert window % BUCKET_FRAMES == 0 or window == 3000
        assert window >= min(3000, frames + PAD_FRAMES)
        assert window < frames + PAD_FRAMES + BUCKET_FRAMES


@pytest.mark.model
def test_utterances_of_thirty_lengths_run_the_encoder_at_a_few_shapes(base, frames):
    speech = frames[LONG]
    shapes = []
    hook = base.whisper.encoder.conv1.register_forward_hook(lambda module, args, out: shapes.append(args[0].shape))
    try:
        for length in range(100, 1000, 30):
            base.encode([speech[:length]])
    finally:
        hook.remove()
    assert len(shapes) == 30
    assert len(set(shapes)) <= 5


def _read(transcript):
    """The words, their times and the segment's log-probability to three places: a batch of
    two runs its matrix products in other blocks than a batch of one, which moves the sum in
    the seventh place (seen in CI), while a wrong window or padding moves it in the first."""
    return [(s.text, round(s.avg_logprob, 3), [(w["word"], w["start"], w["end"]) for w in s.words])
            for s in transcript.segments]


@pytest.mark.model
def test_an_utterance_reads_the_same_alone_and_beside_a_longer_one(base, frames):
    short, long = Window(frames[SHORT]), Window(frames[LONG])
    assert padded_length(len(short.frames)) < padded_length(len(long.frames))
    alone = transcribe(base, [short])[0]
    together = transcribe(base, [long, short])
    assert _read(together[1]) == _read(alone)
    assert "stuff it into you" in together[1].segments[0].text.lower()
    assert _read(together[0]) == _read(transcribe(base, [long])[0])
