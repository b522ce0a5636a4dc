"""The final pass over windows of speech (a live utterance, or a file's joined utterances):
openai-whisper's ``transcribe`` rules, with one encoder pass for a batch of windows.

Why these rules: the kept text must be as good as ``whisper.transcribe`` on the same audio,
so its decoding choices are kept: temperature fallback on repetitive or improbable output,
the no-speech skip, segments split at timestamp tokens, and a continuation window from the
last timestamp when the model stopped early, conditioned on the text before it.

What differs: the encoder reads the window plus 6 s of silence, rounded up to 2 s, not a
30 s window (``model.padded_length``); it runs once for the windows of one such length, so a
window's text does not depend on its batch-mates, and its output is reused
for every fallback and for the word alignment (whisper's ``find_alignment`` would run the
encoder again). The greedy pass checks a draft (the preview's text, ``decoding.draft``),
several tokens a decoder pass, and keeps only the final model's own choices; windows with
no draft decode in one batch (greedy or beam search). A greedy pass whose words the model
itself doubts is read again by beam search (``DOUBTFUL_SHARE``): whisper's ``transcribe()``
reads every window greedily unless told a beam width for all of them, which costs clean
speech 1.9x the time for no gain; doubt puts the beam where the audio is hard. Each window
is told what was said before it (``Window.context``), in its own language, detected when the model is
multilingual and the language "auto". Word times come from the same cross-attention DTW as
whisper's; words that begin after the window's audio are dropped.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numba
import numpy as np
import torch
from whisper import timing
from whisper.audio import N_FRAMES
from whisper.decoding import DecodingOptions, DecodingResult
from whisper.timing import add_word_timestamps, dtw
from whisper.tokenizer import Tokenizer, get_tokenizer

from earwig.audio.log_mel import HOP
from earwig.config import SAMPLE_RATE
from earwig.decoding.draft import greedy_with_draft
from earwig.decoding.model import LoadedModel, padded_length, token_budget

#: ``transcribe``'s defaults, so the kept text equals what whisper itself would write.
TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
COMPRESSION_RATIO_LIMIT = 2.4
LOGPROB_LIMIT = -1.0
NO_SPEECH_LIMIT = 0.6
#: Audio positions per timestamp token: 2 frames (20 ms).
FRAMES_PER_TOKEN = N_FRAMES // 1500
SECONDS_PER_TOKEN = FRAMES_PER_TOKEN * HOP / SAMPLE_RATE
#: ``transcribe()``'s sampling at a fallback temperature: the best of five samples.
BEST_OF = 5
#: ``transcribe()`` stops reading its previous text once a fallback went hotter than this.
PROMPT_UP_TO_TEMPERATURE = 0.5
#: Preceding text read at most: half the decoder's 448-token context, as whisper does.
PROMPT_TOKENS = 223
#: A greedy pass the model doubts (more than this share of its words below even odds) is
#: read again by beam search of this width (files; live where the audio is noisy,
#: ``models.reread_noisy_db``, or everywhere with ``models.reread_live``), which
#: keeps the more probable sequence where greedy decoding took a likely first token into an
#: unlikely sentence. Measured on the 49
#: English files of shared/audio/real with base, file mode, and bench wer's degraded copies:
#: as recorded 0.066 -> 0.065 WER for 8 % more time; white noise 0.200 -> 0.186 for 2.1x the
#: time; a room 0.100 -> 0.095; another talker 0.317 -> 0.289; a voice codec 0.080 -> 0.075.
#: Beam search on every window instead: the same WER, 1.9x the time on clean speech.
DOUBTFUL_SHARE = 0.1
DOUBT_BEAM_SIZE = 5
#: Tokens a window's decoding may write per second of its audio, and at least: real speech
#: is at most ~5 tokens of text a second (``shared/audio/real``: 4.9, Swedish), timestamps
#: add ~1; twice that, so no real window is cut short (a cut one is read on from its last
#: timestamp, as whisper reads on after 224 tokens).
TOKENS_PER_SECOND = 12
MIN_TOKENS = 16


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
    #: The hottest fallback any of its windows needed (0: decoded at temperature 0).
    temperature: float = 0.0
    #: Passes read again by beam search because the model doubted its greedy text.
    reread: int = 0


@dataclass(frozen=True)
class Window:
    """One stretch of a source's audio to transcribe, and what the decoder is told of it."""

    #: Log-mel frames ``(n, bins)``, at most ~30 s.
    frames: np.ndarray
    #: What the same source said just before (``final_context``): read as preceding text,
    #: as ``transcribe()`` reads its previous windows' text.
    context: str = ""
    #: The preview's text of the same audio, checked by greedy decoding (``decoding.draft``).
    draft: str = ""
    #: Its language, when known beforehand ("": the model's setting, or detected).
    language: str = ""
    #: False: the VAD heard no speech in it (a stretch a file run reads anyway,
    #: ``file_windows.GapFiller``). Text there that would need a hotter decoding (too
    #: repetitive or improbable) is taken for noise, not decoded again: over a fan's hum
    #: the temperature ladder cost 34 s for 40 s of audio, and found nothing.
    speech_heard: bool = True


def transcribe(model: LoadedModel, windows: list[Window], beam_size: int = 1,
               abandoned: Callable[[], bool] = lambda: False, n_frames: int | None = None,
               reread_below_db: float = math.inf) -> list[Transcript]:
    """Each window's segments with word times, in its own language (detected per window
    when the model is multilingual and none is set). ``beam_size`` 1 decodes greedily,
    checking the drafts; more is whisper's beam search. Raises ``Abandoned`` at the first
    decoder pass after ``abandoned()`` turns true. ``n_frames``: the encoder's window for
    all of them; by default each window's own ``padded_length``. ``reread_below_db``: a
    greedy pass the model doubts (``DOUBTFUL_SHARE``) is read again by beam search where its
    window's ``spread_db`` is under it (infinity: wherever doubted; 0: never)."""
    if n_frames is not None:
        return _read(model, windows, n_frames, beam_size, abandoned, reread_below_db)
    lengths = [padded_length(len(window.frames)) for window in windows]
    transcripts: list[Transcript | None] = [None] * len(windows)
    for length in dict.fromkeys(lengths):
        group = [i for i, own in enumerate(lengths) if own == length]
        for i, transcript in zip(group, _read(model, [windows[i] for i in group], length, beam_size, abandoned,
                                              reread_below_db)):
            transcripts[i] = transcript
    return transcripts


def _read(model: LoadedModel, windows: list[Window], n_frames: int, beam_size: int,
          abandoned: Callable[[], bool], reread_below_db: float) -> list[Transcript]:
    """``transcribe`` with one encoder window for all the windows."""
    features = model.encode([window.frames for window in windows], n_frames=n_frames)
    languages = [window.language or model.language for window in windows]
    unknown = [i for i, language in enumerate(languages) if language is None]
    if unknown:
        for i, found in zip(unknown, model.detect_languages(features[unknown])):
            languages[i] = found
    transcripts = [Transcript(language, []) for language in languages]
    prompts = [_prompt(_tokenizer(model, language), model.initial_prompt, window.context)
               for language, window in zip(languages, windows)]
    first: list[DecodingResult | None] = [None] * len(windows)
    for group in _same_decoding(languages, prompts, [window.draft for window in windows], beam_size):
        audio_s = max(_seconds(len(windows[i].frames)) for i in group)
        found = _decode(model, features[group], prompts[group[0]], languages[group[0]], TEMPERATURES[0],
                        [windows[i].draft for i in group], [transcripts[i] for i in group], audio_s, beam_size,
                        abandoned)
        for i, result in zip(group, found):
            first[i] = result
    for i, window in enumerate(windows):
        _window(model, _tokenizer(model, languages[i]), prompts[i], window, features[i:i + 1],
                first[i], transcripts[i], beam_size, reread_below_db)
    return transcripts


def _tokenizer(model: LoadedModel, language: str) -> Tokenizer:
    return get_tokenizer(model.whisper.is_multilingual, num_languages=model.whisper.num_languages,
                         language=language, task=model.task)


def _prompt(tokenizer: Tokenizer, initial_prompt: str, context: str) -> list[int]:
    """The user's prompt whole, then as much of the context's end as fits: whisper reads
    half its text context (223 tokens) of preceding text and drops the oldest first,
    which would drop the user's vocabulary before a sentence said a minute ago."""
    initial = tokenizer.encode(" " + initial_prompt.strip()) if initial_prompt.strip() else []
    said = tokenizer.encode(" " + context.strip()) if context.strip() else []
    room = max(0, PROMPT_TOKENS - len(initial))
    return initial[:PROMPT_TOKENS] + (said[-room:] if room else [])


def _same_decoding(languages: list[str], prompts: list[list[int]], drafts: list[str],
                   beam_size: int) -> list[list[int]]:
    """Windows decoded in one batch: whisper's decoding reads one language and prompt a
    batch; greedy decoding checking a draft goes window by window."""
    groups: dict[tuple, list[int]] = {}
    for i, (language, prompt, draft) in enumerate(zip(languages, prompts, drafts)):
        alone = i if draft and beam_size <= 1 else None
        groups.setdefault((language, tuple(prompt), alone), []).append(i)
    return list(groups.values())


def _window(model: LoadedModel, tokenizer: Tokenizer, prompt: list[int], window: Window,
            features: torch.Tensor, result: DecodingResult, transcript: Transcript, beam_size: int,
            reread_below_db: float) -> None:
    """``transcribe``'s seek loop over one window; its first pass is already decoded. Words
    that begin after the window's audio ends are dropped: over the silence after a sentence
    cut off mid-way, Whisper writes an ending that was never said."""
    segments, frames = transcript.segments, window.frames
    said: list[int] = []
    seek, last_speech = 0, 0.0
    audio_s = _seconds(len(frames))
    while True:
        size = min(N_FRAMES, len(frames) - seek)
        if not window.speech_heard and _needs_fallback(result):
            break
        result = _with_fallback(model, features, prompt + said, transcript, result, _seconds(size), beam_size)
        if _is_silence(result):
            break
        pieces, advance, spoken_to = _pieces(model, tokenizer, features, result, seek, size, last_speech)
        heard = [word["probability"] for segment, _ in pieces for word in segment.words]
        if beam_size == 1 and result.temperature == 0 and doubtful(heard) and _noisy_enough(window, reread_below_db):
            again = _decode(model, features, prompt + said, transcript.language, TEMPERATURES[0], [""],
                            [transcript], _seconds(size), DOUBT_BEAM_SIZE)[0]
            if not _needs_fallback(again) and not _is_silence(again):
                pieces, advance, spoken_to = _pieces(model, tokenizer, features, again, seek, size, last_speech)
                transcript.reread += 1
        last_speech = spoken_to
        segments.extend(kept for segment, _ in pieces if (kept := _within(segment, audio_s)) is not None)
        said += [t for _, tokens in pieces for t in tokens if t < tokenizer.eot]
        seek += advance
        if seek >= len(frames) or advance <= 0:
            break
        features = model.encode([frames[seek:]])
        result = _decode(model, features, prompt + said, transcript.language, TEMPERATURES[0], [""],
                         [transcript], _seconds(min(N_FRAMES, len(frames) - seek)), beam_size)[0]


def _pieces(model: LoadedModel, tokenizer: Tokenizer, features: torch.Tensor, result: DecodingResult, seek: int,
            size: int, last_speech: float) -> tuple[list[tuple[Segment, list[int]]], int, float]:
    """One pass's segments with their words' times, how far to seek, and the last speech time."""
    pieces, advance = _split(tokenizer, result, seek, size)
    return pieces, advance, _align_words(model, tokenizer, features, pieces, seek, size, last_speech)


def _noisy_enough(window: Window, reread_below_db: float) -> bool:
    """Whether a doubted pass of ``window`` is read again: its spread is measured only
    then, not for every window the final pass reads."""
    return reread_below_db == math.inf or (reread_below_db > 0 and spread_db(window.frames) < reread_below_db)


def spread_db(frames: np.ndarray) -> float:
    """How far a window's loud parts stand over its quiet ones: the 90th less the 10th
    percentile of its frames' levels (dB; ``frames``: log10 mel power, as the mel actor
    publishes them). Speech in a quiet room spans 20-40 dB; under noise at 10 dB SNR, 6-17."""
    if len(frames) == 0:
        return 0.0
    levels = 10 * np.log10(np.sum(np.power(10.0, frames, dtype=np.float64), axis=1))
    return float(np.percentile(levels, 90) - np.percentile(levels, 10))


def doubtful(probabilities: list[float]) -> bool:
    """More than ``DOUBTFUL_SHARE`` of a pass's words are more likely wrong than right, by
    the model's own probability of each word."""
    return sum(p < 0.5 for p in probabilities) > DOUBTFUL_SHARE * len(probabilities)


def _within(segment: Segment, audio_s: float) -> Segment | None:
    """The segment's words that begin inside the audio; None when none does."""
    if not segment.words:
        return segment if segment.start < audio_s else None
    words = [word for word in segment.words if word["start"] < audio_s]
    if not words:
        return None
    if len(words) < len(segment.words):
        segment.words, segment.end = words, min(words[-1]["end"], audio_s)
        segment.text = "".join(word["word"] for word in words)
    return segment


# --- decoding ---------------------------------------------------------------------------------


def _decode(model: LoadedModel, features: torch.Tensor, prompt: list[int], language: str, temperature: float,
            drafts: list[str], transcripts: list[Transcript], audio_s: float, beam_size: int = 1,
            abandoned: Callable[[], bool] = lambda: False) -> list[DecodingResult]:
    """At temperature 0: greedy checking the drafts one window at a time, or whisper's own
    greedy decoding or beam search over the whole batch at once (each decoder step reads
    the weights once for all the windows: on a CPU that read is most of a step). Hotter:
    whisper's sampling, best of 5, as ``transcribe()`` samples. All windows share language
    and prompt."""
    options = DecodingOptions(task=model.task, language=language, temperature=temperature, prompt=prompt or None,
                              sample_len=token_budget(audio_s, TOKENS_PER_SECOND, MIN_TOKENS))
    if temperature > 0 or beam_size > 1 or (len(drafts) > 1 and not any(drafts)):
        options = dataclasses.replace(options, beam_size=beam_size if temperature == 0 and beam_size > 1 else None,
                                      best_of=BEST_OF if temperature > 0 else None)
        results = model.decode(features, options)
        passes = [len(result.tokens) + 1 for result in results]
    else:
        results, passes = zip(*(greedy_with_draft(model.whisper, features[i:i + 1], options, draft, abandoned)
                                for i, draft in enumerate(drafts)))
    for transcript, result, taken in zip(transcripts, results, passes):
        transcript.decoded_tokens += len(result.tokens) + 1
        transcript.decoder_passes += taken
    return list(results)


def _with_fallback(model: LoadedModel, features: torch.Tensor, prompt: list[int], transcript: Transcript,
                   result: DecodingResult, audio_s: float, beam_size: int) -> DecodingResult:
    """Decode again, hotter, while the output is too repetitive or improbable (not silence);
    past ``transcribe()``'s 0.5 the preceding text is dropped, which may be what misled it."""
    for temperature in TEMPERATURES[1:]:
        if not _needs_fallback(result):
            break
        result = _decode(model, features, prompt if temperature <= PROMPT_UP_TO_TEMPERATURE else [],
                         transcript.language, temperature, [""], [transcript], audio_s, beam_size)[0]
    transcript.temperature = max(transcript.temperature, result.temperature)
    return result


def _seconds(frames: int) -> float:
    return frames * HOP / SAMPLE_RATE


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
        duration = _seconds(size)
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


def _align_words(model: LoadedModel, tokenizer: Tokenizer, features: torch.Tensor,
                 window: list[tuple[Segment, list[int]]], seek: int, size: int,
                 last_speech: float) -> float:
    """Word start/end/probability for the window's segments; returns the last speech time."""
    dicts = [{"seek": seek, "tokens": tokens, "start": segment.start, "end": segment.end}
             for segment, tokens in window]
    with torch.inference_mode():
        add_word_timestamps(segments=dicts, model=_AudioKnown(model.whisper, features),
                            tokenizer=tokenizer, mel=features, num_frames=size,
                            last_speech_timestamp=last_speech)
    for (segment, _), found in zip(window, dicts):
        segment.words = found["words"]
        if found["words"]:
            segment.start, segment.end = found["start"], found["end"]
            last_speech = segment.end
    return last_speech


def compile_alignment() -> None:
    """Have the word alignment's DTW ready now, not at the first Final: compiled by numba
    (2.3 s of CPU) the first time, loaded from numba's cache (0.3 s) at every later model
    load, in this process or another."""
    dtw(torch.zeros(2, 2))


def _cache_alignment() -> None:
    """Whisper's DTW, recompiled with numba's on-disk cache. Whisper compiles it in every
    process that aligns words: each start of the final model, again after each eviction.
    Where numba finds nowhere to write its cache (a read-only install and no writable home),
    whisper's own functions stay."""
    try:
        backtrace = numba.njit(cache=True)(timing.backtrace.py_func)
        dtw_cpu = numba.njit(cache=True, parallel=True)(timing.dtw_cpu.py_func)
    except RuntimeError:
        return
    timing.backtrace, timing.dtw_cpu = backtrace, dtw_cpu


_cache_alignment()
