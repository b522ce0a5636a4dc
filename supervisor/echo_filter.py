"""The text-level net under echo cancellation: a mic Final that repeats what the speakers
said over the same time is marked ``echo`` (logged, never shown, typed or exported).

Why a second line of defence: the canceller lets the first seconds of echo through while it
finds the path, and a loud speaker can overdrive it. Both are heard as the speakers' words
in the mic, at the speakers' time; a talker who happens to say the same words later, or
over other speech, is not.

Decisions only (no I/O): ``heard`` takes the supervisor's messages in order and returns the
Finals to pass on now. A mic Final overlapping a speakers utterance whose Final has not
come yet waits for it (the final actor reads the two sources' utterances in the order they
ended, and the echo ends later than what the speakers played, but a long speakers
utterance can end after its echo's mic utterance does).
"""

from __future__ import annotations

import re
from collections import deque
from difflib import SequenceMatcher

import msgspec

from earwig.config import SAMPLE_RATE
from earwig.messages import AnyMessage, EchoState, Final, SpeechEnd, SpeechStart

#: Of a mic Final's words, at least this share in the same order as the overlapping
#: speakers' words makes it their echo.
SAME_WORDS = 0.6
#: How far apart in time (after the two sources' clocks are lined up) the two may be: the
#: room, the loopback's buffering, the VAD's lead and pad.
SLACK_S = 1.0
#: Speakers Finals kept to match against: more than overlap any one mic Final.
KEEP_SPEAKERS = 16


def words(text: str) -> list[str]:
    return re.findall(r"[\w']+", text.lower())


class EchoFilter:
    def __init__(self) -> None:
        #: Speakers positions minus mic positions at the same instant (EchoState says).
        self._offset = 0
        #: Speakers utterances begun (their start) whose Final has not come.
        self._open: set[int] = set()
        self._speakers: deque[Final] = deque(maxlen=KEEP_SPEAKERS)
        self._held: list[Final] = []

    def heard(self, message: AnyMessage) -> list[Final]:
        """Every message the supervisor has, in order; the Finals to pass on now."""
        if isinstance(message, EchoState):
            self._offset = message.speakers_offset
        elif isinstance(message, SpeechStart) and message.source == "speakers":
            self._open.add(message.start)
        elif isinstance(message, SpeechEnd) and message.source == "speakers":
            self._open.add(message.start)  # its Final is still to come
        elif isinstance(message, Final) and message.source == "speakers":
            self._open.discard(message.start)
            self._speakers.append(message)
            return [message, *self._release()]
        elif isinstance(message, Final):
            self._held.append(message)
            return self._release()
        return []

    def flush(self) -> list[Final]:
        """The session ends: every held mic Final, judged on what came."""
        held, self._held = self._held, []
        return [self._judged(final) for final in held]

    def _release(self) -> list[Final]:
        ready = [final for final in self._held if not self._waits(final)]
        self._held = [final for final in self._held if self._waits(final)]
        return [self._judged(final) for final in ready]

    def _span(self, final: Final) -> tuple[int, int]:
        """A mic Final's span in speakers positions, widened by the slack."""
        slack = int(SLACK_S * SAMPLE_RATE)
        return final.start + self._offset - slack, final.end + self._offset + slack

    def _waits(self, final: Final) -> bool:
        """Whether a speakers utterance still open began before this mic Final ended."""
        _, end = self._span(final)
        return any(start < end for start in self._open)

    def _judged(self, final: Final) -> Final:
        start, end = self._span(final)
        said = [w for other in self._speakers if other.start < end and other.end > start for w in words(other.text)]
        mine = words(final.text)
        if not mine or not said:
            return final
        same = sum(block.size for block in SequenceMatcher(None, mine, said, autojunk=False).get_matching_blocks())
        if same / len(mine) < SAME_WORDS:
            return final
        return msgspec.structs.replace(final, echo=True)
