"""What dictated text becomes before it is delivered: the utterances' Finals in order (not
the speakers' echo), spoken phrases replaced ("new line"
becomes a line break), and successive dictations joined as one text.

Why joining matters: Whisper writes each utterance as a sentence of its own, capitalised and
with no space before it. Dictating a sentence in two breaths into the same field would give
"Send the report.To the whole team." without it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from earwig.messages import Final

#: Punctuation after which the next dictation starts a sentence of its own.
SENTENCE_ENDS = (".", "!", "?", "\n")


def dictated(finals: Iterable[Final], replacements: dict[str, str]) -> str:
    """The text of a dictation's Finals in the order they were said, with the spoken phrases
    replaced. A Final marked ``echo`` is the speakers heard by the mic: never typed."""
    said = sorted((f for f in finals if f.readable), key=lambda f: f.start)
    return replaced(" ".join(f.text for f in said), replacements)


def replaced(text: str, replacements: dict[str, str]) -> str:
    """Each spoken phrase (any case, with the punctuation Whisper put around it) becomes its
    written form: "Hello. New line. Bye." with {"new line": "\\n"} is "Hello.\\nBye."."""
    for spoken, written in replacements.items():
        words = r"\W+".join(re.escape(word) for word in spoken.split())
        pattern = re.compile(rf"[ \t,;:]*\b{words}\b[.,;:!?]*[ \t]*", re.IGNORECASE)
        text = pattern.sub(lambda _: written, text)
    return text


def joined(text: str, previous: str | None) -> str:
    """``text`` as it continues ``previous`` (the last text delivered into the same window,
    if recent): a space between, and its first word in lower case unless a sentence ended."""
    if not text or previous is None or not previous:
        return text
    if not previous.endswith(SENTENCE_ENDS):
        text = _lower_first_word(text)
    if previous.endswith((" ", "\n", "\t")) or text.startswith(("\n", " ")):
        return text
    return " " + text


def _lower_first_word(text: str) -> str:
    first = text.split(maxsplit=1)[0]
    keep = first == "I" or first.startswith(("I'", "I’")) or (len(first) > 1 and first.isupper())
    return text if keep else text[0].lower() + text[1:]
