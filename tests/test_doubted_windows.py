"""A pass the model doubts is read again by beam search: on base and real speech, a noisy
sentence whose greedy text the model itself doubts is read again and comes out better,
and clean speech is not read again (it costs nothing there); live, where the audio is
noisy (``models.reread_noisy_db``), or everywhere when ``models.reread_live`` asks."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from earwig import model_store
from earwig.audio.files import read_audio
from earwig.audio.log_mel import bins_for_model, log_mel
from earwig.config import Config, ModelsConfig, SourceConfig
from earwig.decoding import transcribe as transcribing
from earwig.decoding.model import LoadedModel
from earwig.decoding.transcribe import Window, doubtful, spread_db, transcribe
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
def test_live_a_doubted_pass_is_read_again_only_where_its_audio_is_noisier_than_the_setting(base):
    noisy = frames_of(DEGRADATIONS["noise"].apply(read_audio(NOISY), NOISY.name))
    spread = spread_db(noisy.frames)
    [below] = transcribe(base, [noisy], reread_below_db=spread + 0.5)
    [over] = transcribe(base, [noisy], reread_below_db=spread - 0.5)
    [never] = transcribe(base, [noisy], reread_below_db=0.0)
    assert (below.reread, over.reread, never.reread) == (1, 0, 0)


@pytest.mark.pure
def test_noisy_speech_spreads_less_than_the_default_and_speech_in_a_quiet_room_more():
    """The live default (18 dB) between the two, by a margin: white noise at 10 dB SNR and
    the same sentence as recorded; espeak-ng's voices over digital silence (the test
    suite's speech) lie far over it."""
    sentence = read_audio(NOISY)
    noisy = spread_db(frames_of(DEGRADATIONS["noise"].apply(sentence, NOISY.name)).frames)
    clean = spread_db(frames_of(sentence).frames)
    threshold = ModelsConfig().reread_noisy_db
    assert noisy < threshold - 2 and clean > threshold + 5, (noisy, clean)
    assert spread_db(np.zeros((0, 80), np.float32)) == 0.0


@pytest.mark.model
def test_clean_speech_is_not_read_again(base):
    [clean] = transcribe(base, [frames_of(read_audio(AUDIO / "jfk.flac"))])
    assert clean.reread == 0
    assert "ask not what your country can do for you" in " ".join(words(text(clean))), text(clean)


def text(transcript) -> str:
    return " ".join(segment.text for segment in transcript.segments)


@pytest.mark.pure
@pytest.mark.parametrize("models, final", [(ModelsConfig(), 18.0), (ModelsConfig(reread_noisy_db=0), 0.0),
                                           (ModelsConfig(reread_live=True), math.inf)])
def test_live_only_the_final_actor_rereads_and_where_the_settings_say(models, final):
    config = Config(mic=SourceConfig(replay=str(AUDIO / "jfk.flac")), speakers=SourceConfig(enabled=False),
                    models=models)
    plan = transcription_plan(config, segments.run_prefix())
    assert {spec.name: spec.params.reread_below_db for spec in plan.actors if spec.name in ("preview", "final")} == \
        {"preview": 0.0, "final": final}
