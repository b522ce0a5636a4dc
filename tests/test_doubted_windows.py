"""A pass the model doubts is read again by beam search: on base and real speech, a noisy
sentence whose greedy text the model itself doubts is read again and comes out better,
and clean speech is not read again (it costs nothing there); live, only where
``models.reread_live`` asks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from earwig import model_store
from earwig.audio.files import read_audio
from earwig.audio.log_mel import bins_for_model, log_mel
from earwig.config import Config, ModelsConfig, SourceConfig
from earwig.decoding import transcribe as transcribing
from earwig.decoding.model import LoadedModel
from earwig.decoding.transcribe import Window, doubtful, transcribe
from earwig.profiling.harness.degrade import DEGRADATIONS
from earwig.profiling.harness.scoring import word_error_rate, words
from earwig.shm import segments
from earwig.supervisor.plan import transcription_plan

AUDIO = Path(__file__).resolve().parents[2] / "shared" / "audio"
#: 3.3 s of LibriSpeech ("Stuff it into you, his belly counselled him."), read under bench
#: wer's white noise: greedy decoding writes "his belly consoled him", doubting two of its
#: eight words.
NOISY = AUDIO / "real" / "librispeech_test-clean_1089-134686-0001.flac"
REFERENCE = "stuff it into you his belly counselled him"


@pytest.fixture(scope="module")
def base() -> LoadedModel:
    return LoadedModel(model_store.load("base"), torch.device("cpu"))


def frames_of(audio) -> Window:
    return Window(log_mel(audio, bins_for_model("base")))


@pytest.mark.pure
@pytest.mark.parametrize("probabilities, doubted", [
    ([], False),
    ([0.9] * 10, False),
    ([0.9] * 9 + [0.2], False),  # one word in ten: greedy decoding stands
    ([0.9] * 8 + [0.2, 0.4], True),
    ([0.3], True),
    ([0.5, 0.6], False),  # even odds are not doubt
])
def test_a_pass_is_doubted_when_more_than_a_tenth_of_its_words_are_more_likely_wrong(probabilities, doubted):
    assert doubtful(probabilities) is doubted


@pytest.mark.model
def test_a_noisy_sentence_the_model_doubts_is_read_again_and_comes_out_better(base, monkeypatch):
    noisy = frames_of(DEGRADATIONS["noise"].apply(read_audio(NOISY), NOISY.name))
    [again] = transcribe(base, [noisy])
    monkeypatch.setattr(transcribing, "DOUBTFUL_SHARE", 1.0)  # nothing doubted: greedy alone
    [greedy] = transcribe(base, [noisy])

    assert again.reread == 1 and greedy.reread == 0
    assert word_error_rate(REFERENCE, text(again)) < word_error_rate(REFERENCE, text(greedy)), (text(again),
                                                                                                 text(greedy))


@pytest.mark.model
def test_clean_speech_is_not_read_again(base):
    [clean] = transcribe(base, [frames_of(read_audio(AUDIO / "jfk.flac"))])
    assert clean.reread == 0
    assert "ask not what your country can do for you" in " ".join(words(text(clean))), text(clean)


def text(transcript) -> str:
    return " ".join(segment.text for segment in transcript.segments)


@pytest.mark.pure
@pytest.mark.parametrize("live", [False, True])
def test_live_only_the_final_actor_rereads_and_only_when_the_setting_asks(live):
    config = Config(mic=SourceConfig(replay=str(AUDIO / "jfk.flac")), speakers=SourceConfig(enabled=False),
                    models=ModelsConfig(reread_live=live))
    plan = transcription_plan(config, segments.run_prefix())
    assert {spec.name: spec.params.reread for spec in plan.actors if spec.name in ("preview", "final")} == \
        {"preview": False, "final": live}
