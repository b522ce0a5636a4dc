"""What the mel actor announces of the mic when only dictation is transcribed (``earwig
dictate``, unless ``dictation.transcribe_outside``): the utterances inside a dictation, and
nothing the room said before, between or after.

Why here, at the source of every utterance: what is not announced is never transcribed,
previewed or logged, and no model loads until the first dictation. The VAD itself runs on
as always (it has to find where a dictation's speech begins and ends); only its events are
held back. The rule: an utterance is announced when it starts inside a dictation (the
dictation's hold ends the room's utterance at the key and starts a new one there), and
each later event of that utterance passes, up to its end.
"""

from __future__ import annotations

from earwig.messages import DictationSpan, SpeechEnd, SpeechStart


class DictatedOnly:
    """Takes the VAD's events of one source in order; returns those to publish."""

    def __init__(self) -> None:
        #: The start of the utterance announced and not yet ended; None: none is.
        self._announced: int | None = None

    def resumed(self, start: int) -> None:
        """A restarted mel process carries on the utterance its predecessor announced."""
        self._announced = start

    def passed(self, events: list, held_from: int | None) -> list:
        """``held_from``: where the dictation in progress began (the segmenter's hold), None
        outside one."""
        kept = []
        for event in events:
            if isinstance(event, DictationSpan):
                kept.append(event)
            elif isinstance(event, SpeechStart):
                if held_from is not None and event.start >= held_from:
                    self._announced = event.start
                    kept.append(event)
            elif event.start == self._announced:
                kept.append(event)
                if isinstance(event, SpeechEnd):
                    self._announced = None
        return kept
