"""What the final model is told was said before an utterance: the same source's recent
Finals, as ``transcribe()`` conditions each window on the text of the windows before it.

Why: an utterance cut at a breath ("is not.") means little alone; after "and so my fellow
Americans, ask not what your country can do for you," the decoder knows the names, the
spelling and the sentence it is in. Whisper's own long-form transcription reads its
previous text for the same reason.

When the context is dropped, and why:
- after ``RESET_AFTER_S`` without speech from the source: what came before is another
  exchange, and old text only biases the decoder towards repeating it;
- when the language changes: English text before a German utterance pulls the decoder
  towards English (and towards translating);
- when a Final was decoded only at a fallback temperature above ``transcribe()``'s 0.5, or
  reads as a repetition loop (``final_filter.looping``): its text is the kind of output
  that, fed back, makes the next window repeat it too (whisper resets its prompt then).
"""

from __future__ import annotations

from dataclasses import dataclass

from earwig.actors.final_filter import looping
from earwig.config import SAMPLE_RATE
from earwig.messages import Source

#: Silence after which a source's earlier text no longer counts as context.
RESET_AFTER_S = 30.0
#: Words of context kept: more than the 223 tokens the prompt can hold, which
#: ``final_decode`` trims from the oldest end.
KEEP_WORDS = 200
#: ``transcribe()``'s rule: a window decoded hotter than this does not condition the next.
MAX_TEMPERATURE = 0.5


@dataclass
class _Said:
    text: str
    language: str
    end: int


class SpokenContext:
    """Feed each source's Finals in order to ``record``; ``before`` gives the text to prompt
    an utterance with."""

    def __init__(self) -> None:
        self._said: dict[Source, list[_Said]] = {}

    def record(self, source: Source, text: str, language: str, end: int, temperature: float = 0.0) -> None:
        """A Final of ``source`` ending at sample ``end``, decoded at ``temperature``."""
        said = self._said.setdefault(source, [])
        if said and said[-1].language != language:
            said.clear()
        if temperature > MAX_TEMPERATURE or looping(text):
            said.clear()
            return
        if text.strip():
            said.append(_Said(text.strip(), language, end))
        while sum(len(s.text.split()) for s in said) > KEEP_WORDS and len(said) > 1:
            said.pop(0)

    def before(self, source: Source, start: int) -> str:
        """The source's context for an utterance beginning at sample ``start``."""
        said = self._said.get(source, [])
        if said and start - said[-1].end > RESET_AFTER_S * SAMPLE_RATE:
            said.clear()
        return " ".join(s.text for s in said if s.end <= start)
