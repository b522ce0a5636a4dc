"""How many tokens a window's decoding may write: in proportion to its audio, so that a
hallucination loop on a short window is rejected after a few dozen decoder steps, not 224
at every fallback temperature."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from earwig import model_store
from earwig.decoding.model import MAX_SAMPLE_LEN, LoadedModel, token_budget
from earwig.decoding.transcribe import MIN_TOKENS, TEMPERATURES, TOKENS_PER_SECOND, Window, transcribe
from speech_text import words

#: jfk.flac's "Ask not" (1.95 s) as the speakers column heard it through PulseAudio's
#: loopback in ``bench play``: log-mel frames (float16). Read after the text below, base
#: writes "Ask not. Ask not. ..." until it is stopped, at every temperature up to 0.6.
LOOPING = Path(__file__).parent / "data" / "ask_not_through_loopback.npy"
CONTEXT = ("Ask what you can do for your country. Ask what you can do for your country. "
           "What your country can do for you.")


@pytest.mark.pure
def test_the_budget_grows_with_the_audio_up_to_whispers_224():
    assert token_budget(0.0, TOKENS_PER_SECOND, MIN_TOKENS) == MIN_TOKENS
    assert token_budget(2.0, TOKENS_PER_SECOND, MIN_TOKENS) == MIN_TOKENS + 2 * TOKENS_PER_SECOND
    assert token_budget(30.0, TOKENS_PER_SECOND, MIN_TOKENS) == MAX_SAMPLE_LEN


@pytest.mark.model
def test_a_short_window_that_loops_is_rejected_within_its_budget_and_read_right():
    frames = np.load(LOOPING).astype(np.float32)
    model = LoadedModel(model_store.load("base"), torch.device("cpu"))
    transcript = transcribe(model, [Window(frames, context=CONTEXT)])[0]
    assert words(" ".join(s.text for s in transcript.segments)) == ["ask", "not"]
    assert transcript.temperature > 0  # it did loop: the greedy pass was rejected
    passes = TEMPERATURES.index(transcript.temperature) + 1
    budget = token_budget(len(frames) / 100, TOKENS_PER_SECOND, MIN_TOKENS)
    # + 1: each pass's end token; whisper's allowance would have let each pass write 224
    assert transcript.decoded_tokens <= passes * (budget + 1) < passes * MAX_SAMPLE_LEN / 2
