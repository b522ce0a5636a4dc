"""Which final segments are Whisper's known inventions over non-speech, dropped before a
Final is published. Every rule and threshold is here, in one place.

Why: a VAD lets through breathing, keyboard noise and music, and Whisper, trained on
subtitles, answers those with text that was never said: "[BLANK_AUDIO]", "(music)", a lone
"Thank you." or "Thanks for watching!", or one phrase repeated until the window ends.
"""

from __future__ import annotations

import re

import msgspec

from whisper.utils import compression_ratio

from earwig.audio.log_mel import HOP
from earwig.config import SAMPLE_RATE
from earwig.decoding.transcribe import COMPRESSION_RATIO_LIMIT, Segment, Transcript
from earwig.messages import Final, Source, Stamps, Word

#: Whisper's own silence rule (``transcribe``'s no_speech_threshold and logprob_threshold):
#: the no-speech token was likely and the text improbable.
NO_SPEECH_PROB = 0.6
LOW_AVG_LOGPROB = -1.0
#: Texts Whisper writes over non-speech, compared lower-case without punctuation. Dropped
#: only when they are all a segment says and the no-speech token was at least this likely,
#: so a clearly spoken "Thank you." stays.
LONE_PHRASES = frozenset({
    "thank you", "thank you very much", "thanks for watching", "thank you for watching",
    "thanks for watching and see you next time", "please subscribe", "bye", "you", "so",
    "subtitles by the amaraorg community",
})
LONE_PHRASE_NO_SPEECH_PROB = 0.2
#: Bracketed or parenthesised only: "[BLANK_AUDIO]", "(music)", "[ Silence ]", "♪".
NON_SPEECH_MARK = re.compile(r"^\s*(\[[^\]]*\]|\([^)]*\)|[♪♫\s]+)\s*$")
#: Words said faster than this on average (first word's start to last word's end) cannot
#: have been said: the fastest talkers take ~140 ms a syllable. Whisper squeezes an ending
#: it invented into the last frames of a window this way ("of the skinners." in 60 ms
#: after a sentence cut off mid-way). Measured on shared/audio/real with base: the
#: invention 0.02 s a word, the fastest real segment 0.096 s.
MIN_WORD_S = 0.05
#: An n-gram of up to this many words repeated this many times in a row is a decoding loop.
REPEAT_MAX_N = 6
REPEAT_TIMES = 4

_NOT_A_WORD_CHARACTER = re.compile(r"[^\w\s']+")


def hallucinated(segment: Segment) -> str:
    """Why the segment is an invention ("" when it is kept)."""
    text = segment.text.strip()
    if not text:
        return "empty"
    if NON_SPEECH_MARK.match(text):
        return "non-speech mark"
    if segment.no_speech_prob > NO_SPEECH_PROB and segment.avg_logprob < LOW_AVG_LOGPROB:
        return "no speech"
    words = words_of(text)
    if not words:
        return "no words"  # punctuation alone: what is left of an ending past the audio
    if " ".join(words) in LONE_PHRASES and segment.no_speech_prob >= LONE_PHRASE_NO_SPEECH_PROB:
        return "lone phrase"
    if looping(text):
        return "repetition"
    if len(segment.words) > 1 and (segment.words[-1]["end"] - segment.words[0]["start"]) \
            < MIN_WORD_S * len(segment.words):
        return "too fast to be said"
    return ""


def words_of(text: str) -> list[str]:
    """The words of a text, lower-case, without punctuation: how the rules compare them."""
    return _NOT_A_WORD_CHARACTER.sub("", text.lower()).split()


def looping(text: str) -> bool:
    """A decoding loop: an n-gram of up to ``REPEAT_MAX_N`` words said ``REPEAT_TIMES`` times
    in a row, in a text as repetitive as Whisper's own loop check calls it (gzip
    compression ratio over 2.4). The ratio keeps what people say ("some more words, words,
    words, words": 1.3; "no no no no": 0.9) and drops what the decoder got stuck in
    ("Hello? Hello? Hello? Hello? Hello? Hello? Hello? Hello?": 3.1); never kept,
    committed or fed back."""
    return loop_start(words_of(text)) is not None and compression_ratio(text) > COMPRESSION_RATIO_LIMIT


def loop_start(words: list[str]) -> int | None:
    """Where the first n-gram said ``REPEAT_TIMES`` times in a row begins in ``words`` (None:
    there is none): the start of a loop, or of one in the making, which the preview does
    not commit (it is still shown, and the final model writes what was said)."""
    for start in range(len(words)):
        for n in range(1, REPEAT_MAX_N + 1):
            if start + n * REPEAT_TIMES > len(words):
                break
            gram = words[start:start + n]
            if all(words[start + k * n:start + (k + 1) * n] == gram for k in range(1, REPEAT_TIMES)):
                return start
    return None


def kept_final(source: Source, start: int, end: int, transcript: Transcript, stamps: Stamps | None = None,
               read_from: int | None = None, own_from: int | None = None, known: str = "",
               heard: bool = True) -> Final:
    """The Final of samples ``[start, end)`` from the segments that are not inventions; word
    times in samples (time 0 of the transcript is the centre of the frame ``read_from``,
    by default ``start``, is in). A fragment read with the utterances before it keeps the
    words after their ``known`` text, where the transcript begins with it word for word,
    else the words centred after ``own_from``."""
    origin = (start if read_from is None else read_from) // HOP * HOP
    kept = [segment for segment in transcript.segments if not hallucinated(segment)]
    words = [Word(text=w["word"], start=origin + round(w["start"] * SAMPLE_RATE),
                  end=origin + round(w["end"] * SAMPLE_RATE), probability=float(w["probability"]))
             for segment in kept for w in segment.words]
    if own_from is None or own_from <= origin:
        text = "".join(segment.text for segment in kept)
    else:
        after = _after_known(words, known)
        words = after if after is not None else [w for w in words if (w.start + w.end) // 2 >= own_from]
        text = "".join(w.text for w in words)
    return Final(source=source, start=start, end=end, text=text.strip(), language=transcript.language,
                 words=words, stamps=stamps, heard=heard)


def _after_known(words: list[Word], known: str) -> list[Word] | None:
    """The words after the ``known`` text, when the words begin with it (compared as the
    rules compare words; none may follow); None when they do not."""
    said = [" ".join(words_of(w.text)) for w in words]
    expected = [w for w in (" ".join(words_of(w)) for w in known.split()) if w]
    if not expected or said[:len(expected)] != expected:
        return None
    return words[len(expected):]


def segment_finals(source: Source, start: int, end: int, transcript: Transcript) -> list[Final]:
    """``kept_final`` of each segment that is not an invention: a file's window of up to
    25 s read as the lines Whisper split it into, each with its own times."""
    origin = start // HOP * HOP
    finals = []
    for segment in transcript.segments:
        final = kept_final(source, start, end, Transcript(transcript.language, [segment]))
        if final.text:
            first = max(start, origin + round(segment.start * SAMPLE_RATE))
            last = min(end, max(first + 1, origin + round(segment.end * SAMPLE_RATE)))
            finals.append(msgspec.structs.replace(final, start=first, end=last))
    return finals
