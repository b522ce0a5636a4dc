"""How text is scored against what was said, in tests and benchmarks alike: word error rate
(jiwer) after Whisper's own English normalizer, so "Mr." and "mister", "2" and "two" agree
(other languages: Whisper's basic normalizer, which drops case, punctuation and marks).

Why jiwer: the standard WER (Levenshtein over words) used by the papers earwig compares
against; it is a dependency of the test extra, which the benchmarks run with.
"""

from __future__ import annotations

from difflib import SequenceMatcher

import jiwer
from whisper.normalizers import BasicTextNormalizer, EnglishTextNormalizer

_english = EnglishTextNormalizer()
_basic = BasicTextNormalizer()


def words(text: str, english: bool = True) -> list[str]:
    return (_english if english else _basic)(text).split()


def word_error_rate(references: list[str] | str, hypotheses: list[str] | str, english: bool = True) -> float:
    """jiwer's WER after Whisper's normalizer, over all utterances together."""
    if isinstance(references, str):
        references, hypotheses = [references], [hypotheses]
    return jiwer.wer([" ".join(words(r, english)) for r in references],
                     [" ".join(words(h, english)) for h in hypotheses])


#: Words found in runs at least this long count as bleed: single common words ("the",
#: "of") match any two English texts by chance, three in a row do not.
BLEED_RUN = 3


def bleed(played: str, heard: str) -> float:
    """The share of ``played``'s words found in ``heard`` in order, in runs of BLEED_RUN or
    more: how much of what the speakers said came back as the microphone's text."""
    said, kept = words(played), words(heard)
    if not said:
        return 0.0
    matcher = SequenceMatcher(None, said, kept, autojunk=False)
    return sum(block.size for block in matcher.get_matching_blocks() if block.size >= BLEED_RUN) / len(said)
