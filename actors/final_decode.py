"""The final pass over utterances: openai-whisper's ``transcribe`` rules, on frames from the
mel rings, with one encoder pass for a batch of utterances.

Why these rules: the kept text must be as good as ``whisper.transcribe`` on the same audio,
so its decoding choices are kept: temperature fallback on repetitive or improbable output,
the no-speech skip, segments split at timestamp tokens, and a continuation window from the
last timestamp when the model stopped early, conditioned on the text before it.

What differs: the encoder reads the utterance plus 6 s of silence, not a 30 s window
(``model_session.PAD_FRAMES``); it runs once for the whole batch, and its output is reused
for every fallback and for the word alignment (whisper's ``find_alignment`` would run the
encoder again). The greedy pass checks the preview's text as a draft (``final_draft``),
several tokens a decoder pass, and keeps only the final model's own choices. Word times
come from the same cross-attention DTW as whisper's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from whisper.audio import N_FRAMES
from whisper.decoding import DecodingOptions, DecodingResult
from whisper.timing import add_word_timestamps, dtw
from whisper.tokenizer import Tokenizer, get_tokenizer

from earwig.actors.final_draft import greedy_with_draft
from earwig.actors.mel_frames import HOP
from earwig.actors.model_session import ModelSession
from earwig.config import SAMPLE_RATE

#: ``transcribe``'s defaults, so the kept text equals what whisper itself would write.
TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
COMPRESSION_RATIO_LIMIT = 2.4
LOGPROB_LIMIT = -1.0
NO_SPEECH_LIMIT = 0.6
#: Audio positions per timestamp token: 2 frames (20 ms).
FRAMES_PER_TOKEN = N_FRAMES // 1500
SECONDS_PER_TOKEN = FRAMES_PER_TOKEN * HOP / SAMPLE_RATE


@dataclass
class Segment:
    """One timestamped stretch of an utterance's text, times in seconds from its first frame."""

    text: str
    start: float
    end: float
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    words: list[dict] = field(default_factory=list)


@dataclass
class Transcript:
    language: str
    segments: list[Segment]
    #: Tokens decoded (fallbacks included) and the decoder passes they took (whisper's
    #: decoding: one a token; with a draft, fewer).
    decoded_tokens: int = 0
    decoder_passes: int = 0


def transcribe(session: ModelSession, utterances: list[np.ndarray], drafts: list[str] | None = None,
               abandoned: Callable[[], bool] = lambda: False) -> list[Transcript]:
    """Each utterance's frames (at most ~30 s) in, its segments with word times out.
    ``drafts``: the preview's text of each utterance, if any (``final_draft``); raises
    ``Abandoned`` at the first decoder pass after ``abandoned()`` turns true."""
    model = session.model
    assert model is not None
    tokenizer = get_tokenizer(model.is_multilingual, num_languages=model.num_languages,
                              language=session.language, task=session.params.task)
    prompt = tokenizer.encode(" " + session.params.initial_prompt.strip()) \
        if session.params.initial_prompt.strip() else []
    features = session.encode(utterances)
    drafts = drafts or [""] * len(utterances)
    transcripts = [Transcript("", []) for _ in utterances]
    first = _decode(session, features, prompt, TEMPERATURES[0], drafts, transcripts, abandoned)
    for i, frames in enumerate(utterances):
        _utterance(session, tokenizer, prompt, frames, features[i:i + 1], first[i], transcripts[i])
    return transcripts


def _utterance(session: ModelSession, tokenizer: Tokenizer, prompt: list[int], frames: np.ndarray,
               features: torch.Tensor, result: DecodingResult, transcript: Transcript) -> None:
    """``transcribe``'s seek loop over one utterance; its first window is already decoded."""
    segments = transcript.segments
    said: list[int] = []
    seek, last_speech = 0, 0.0
    transcript.language = result.language
    while True:
        size = min(N_FRAMES, len(frames) - seek)
        result = _with_fallback(session, features, prompt + said, result, transcript)
        if _is_silence(result):
            break
        window, advance = _split(tokenizer, result, seek, size)
        last_speech = _align_words(session, tokenizer, features, window, seek, size, last_speech)
        segments.extend(segment for segment, _ in window)
        said += [t for _, tokens in window for t in tokens if t < tokenizer.eot]
        seek += advance
        if seek >= len(frames) or advance <= 0:
            break
        features = session.encode([frames[seek:]])
        result = _decode(session, features, prompt + said, TEMPERATURES[0], [""], [transcript])[0]


# --- decoding ---------------------------------------------------------------------------------


def _decode(session: ModelSession, features: torch.Tensor, prompt: list[int], temperature: float,
            drafts: list[str], transcripts: list[Transcript],
            abandoned: Callable[[], bool] = lambda: False) -> list[DecodingResult]:
    """Greedy with the drafts where the language is known; else whisper's own decoding
    (sampling, language detection), all windows in one batch."""
    options = DecodingOptions(task=session.params.task, language=session.language,
                              temperature=temperature, prompt=prompt or None)
    if temperature > 0 or session.language is None:
        results = session.decode(features, options)
        passes = [len(result.tokens) + 1 for result in results]
    else:
        results, passes = zip(*(greedy_with_draft(session.model, features[i:i + 1], options, draft, abandoned)
                                for i, draft in enumerate(drafts)))
    for transcript, result, taken in zip(transcripts, results, passes):
        transcript.decoded_tokens += len(result.tokens) + 1
        transcript.decoder_passes += taken
    return list(results)


def _with_fallback(session: ModelSession, features: torch.Tensor, prompt: list[int],
                   result: DecodingResult, transcript: Transcript) -> DecodingResult:
    """Decode again, hotter, while the output is too repetitive or improbable (not silence)."""
    for temperature in TEMPERATURES[1:]:
        if not _needs_fallback(result):
            break
        result = _decode(session, features, prompt, temperature, [""], [transcript])[0]
    return result


def _needs_fallback(result: DecodingResult) -> bool:
    if result.no_speech_prob > NO_SPEECH_LIMIT and result.avg_logprob < LOGPROB_LIMIT:
        return False  # silence: no temperature will find words in it
    return result.compression_ratio > COMPRESSION_RATIO_LIMIT or result.avg_logprob < LOGPROB_LIMIT


def _is_silence(result: DecodingResult) -> bool:
    return result.no_speech_prob > NO_SPEECH_LIMIT and result.avg_logprob <= LOGPROB_LIMIT


# --- segments and words -----------------------------------------------------------------------


def _split(tokenizer: Tokenizer, result: DecodingResult, seek: int,
           size: int) -> tuple[list[tuple[Segment, list[int]]], int]:
    """The window's segments (split at pairs of timestamp tokens) and how far to seek.

    A window that ends in a single timestamp was read to its end; otherwise the last,
    unfinished segment is read again in the next window, from the last timestamp.
    """
    tokens = result.tokens
    is_time = [t >= tokenizer.timestamp_begin for t in tokens]
    offset = seek * HOP / SAMPLE_RATE

    def at(token: int) -> float:
        return offset + (token - tokenizer.timestamp_begin) * SECONDS_PER_TOKEN

    def segment(part: list[int], start: float, end: float) -> tuple[Segment, list[int]]:
        text = tokenizer.decode([t for t in part if t < tokenizer.eot])
        return Segment(text, start, end, result.avg_logprob, result.no_speech_prob,
                       result.compression_ratio), part

    ends_once = is_time[-2:] == [False, True]
    cuts = [i for i in range(1, len(tokens)) if is_time[i] and is_time[i - 1]]
    if not cuts:
        stamps = [t for t, timed in zip(tokens, is_time) if timed]
        duration = size * HOP / SAMPLE_RATE
        if stamps and stamps[-1] != tokenizer.timestamp_begin:
            duration = (stamps[-1] - tokenizer.timestamp_begin) * SECONDS_PER_TOKEN
        return [segment(tokens, offset, offset + duration)], size
    if ends_once:
        cuts.append(len(tokens))
    window, last = [], 0
    for cut in cuts:
        part = tokens[last:cut]
        window.append(segment(part, at(part[0]), at(part[-1])))
        last = cut
    advance = size if ends_once else (tokens[last - 1] - tokenizer.timestamp_begin) * FRAMES_PER_TOKEN
    return window, advance


class _AudioKnown:
    """The model as ``find_alignment`` calls it, with the window's audio features known:
    ``model(mel, tokens)`` runs the decoder only."""

    def __init__(self, model, features: torch.Tensor) -> None:
        self._model, self._features = model, features

    def __getattr__(self, name):
        return getattr(self._model, name)

    def __call__(self, mel, tokens):
        return self._model.decoder(tokens, self._features)


def _align_words(session: ModelSession, tokenizer: Tokenizer, features: torch.Tensor,
                 window: list[tuple[Segment, list[int]]], seek: int, size: int,
                 last_speech: float) -> float:
    """Word start/end/probability for the window's segments; returns the last speech time."""
    dicts = [{"seek": seek, "tokens": tokens, "start": segment.start, "end": segment.end}
             for segment, tokens in window]
    with torch.inference_mode():
        add_word_timestamps(segments=dicts, model=_AudioKnown(session.model, features),
                            tokenizer=tokenizer, mel=features, num_frames=size,
                            last_speech_timestamp=last_speech)
    for (segment, _), found in zip(window, dicts):
        segment.words = found["words"]
        if found["words"]:
            segment.start, segment.end = found["start"], found["end"]
            last_speech = segment.end
    return last_speech


def compile_alignment() -> None:
    """Have numba compile the word alignment's DTW now (2.3 s), not at the first Final."""
    dtw(torch.zeros(2, 2))
