"""How text is scored against what was said, in tests and benchmarks alike: word error rate
(jiwer) after Whisper's own English normalizer, so "Mr." and "mister", "2" and "two" agree.

Why jiwer: the standard WER (Levenshtein over words) used by the papers earwig compares
against; it is a dependency of the test extra, which the benchmarks run with.
"""

from __future__ import annotations

import jiwer
from whisper.normalizers import EnglishTextNormalizer

_normalize = EnglishTextNormalizer()


def words(text: str) -> list[str]:
    return _normalize(text).split()


def word_error_rate(references: list[str] | str, hypotheses: list[str] | str) -> float:
    """jiwer's WER after Whisper's English normalizer, over all utterances together."""
    if isinstance(references, str):
        references, hypotheses = [references], [hypotheses]
    return jiwer.wer([" ".join(words(r)) for r in references], [" ".join(words(h)) for h in hypotheses])
