"""The final model's draft-checked greedy decoding, on base and espeak-ng speech: the
tokens are whisper's own greedy tokens whatever the draft, in fewer passes with a good one."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import torch
from whisper.decoding import DecodingOptions

from earwig import model_store
from earwig.audio.files import read_audio
from earwig.audio.log_mel import LogMelStream, model_input
from earwig.decoding.draft import DecoderCache, greedy_with_draft
from earwig.decoding.model import PAD_FRAMES, _encoder, _FeaturesGiven
from installed import require

pytestmark = pytest.mark.model

SAID = "Please send me the report before the end of the day."


@pytest.fixture(scope="module")
def base():
    return model_store.load("base")


@pytest.fixture(scope="module")
def features(base, tmp_path_factory) -> torch.Tensor:
    require("espeak-ng")
    wav = tmp_path_factory.mktemp("draft") / "said.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), SAID], check=True)
    audio = read_audio(wav)
    stream = LogMelStream([80])
    frames = np.concatenate([stream.push(audio)[80], stream.finish(len(audio))[80]])
    mel = model_input(frames, len(frames) + PAD_FRAMES)
    with torch.inference_mode():
        return _encoder(base, torch.from_numpy(mel)[None])


def _whisper_greedy(base, features, **options):
    with torch.inference_mode():
        return _FeaturesGiven(base, DecodingOptions(language="en", temperature=0.0, **options)).run(features)[0]


@pytest.mark.parametrize("draft", ["", SAID, "Please end me in the report before the end on the day.",
                                   "Something else entirely, said by nobody", "Please send"])
def test_the_tokens_are_whispers_greedy_tokens_whatever_the_draft(base, features, draft):
    theirs = _whisper_greedy(base, features)
    ours, _ = greedy_with_draft(base, features, DecodingOptions(language="en", temperature=0.0), draft)
    assert ours.tokens == theirs.tokens
    assert ours.text == theirs.text
    assert ours.avg_logprob == pytest.approx(theirs.avg_logprob, abs=1e-4)
    assert ours.no_speech_prob == pytest.approx(theirs.no_speech_prob, abs=1e-4)
    assert ours.compression_ratio == pytest.approx(theirs.compression_ratio)


def test_without_timestamps_and_with_a_prompt_too(base, features):
    options = dict(without_timestamps=True, prompt=[50363, 1770, 13])
    theirs = _whisper_greedy(base, features, **options)
    ours, _ = greedy_with_draft(base, features, DecodingOptions(language="en", temperature=0.0, **options), SAID)
    assert ours.tokens == theirs.tokens


def test_a_right_draft_takes_two_passes_no_draft_one_a_token(base, features):
    options = DecodingOptions(language="en", temperature=0.0)
    right, right_passes = greedy_with_draft(base, features, options, _whisper_greedy(base, features).text)
    _, no_draft_passes = greedy_with_draft(base, features, options, "")
    assert right_passes == 2  # prompt and draft in one pass, then the end timestamp's
    # One a token and the end of text, less the <|0.00|> the first pass proposes itself.
    assert no_draft_passes == len(right.tokens)


def test_the_cache_gives_the_logits_of_a_whole_forward_after_being_cut_back(base, features):
    tokens = [50258, 50259, 50359, 50364, 2555, 2845, 385, 264, 2275]
    with torch.inference_mode():
        whole = base.decoder(torch.tensor([tokens]), features)[0]
        cache = DecoderCache(base, features)
        cache.hidden(tokens[:3] + [1, 2, 3])  # a proposal that is then rejected
        cache.length = 3
        first = cache.logits(cache.hidden(tokens[3:5]))
        rest = cache.logits(cache.hidden(tokens[5:]))
    assert torch.allclose(torch.cat((first, rest)), whole[3:], atol=1e-3)
