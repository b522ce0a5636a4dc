"""The text-level net under echo cancellation: a mic Final that repeats what the speakers
said over the same time is marked ``echo`` (logged, never shown, typed or exported).

Why a second line of defence: the canceller lets the first seconds of echo through while it
finds the path, and a loud speaker can overdrive it. Both are heard as the speakers' words
in the mic, at the speakers' time; a talker who happens to say the same words later, or
over other speech, is not.

Why words, not only Finals: the speakers' first words, heard before the canceller has
found the path, are often joined to the talker's own words in one mic utterance ("he hoped
there" + what the talker said). Such a Final is split where the echo ends: its first (or
last) words that repeat the speakers' words at their time, in runs of ``RUN`` or more,
become a Final of their own marked ``echo`` (logged, nothing lost), and the talker's words
stay. Word times are needed on both sides; a served Final (none) is judged whole.

Why the mic's uncleaned start too: the canceller cleans the mic only from the moment the
echo path is found (``EchoState.cleaned_from``, 0.3-0.7 s into the speakers' first speech),
and the VAD hears the speakers' first words in the mic before that. Whisper reads such a
short echo badly ("We hope that we'll live in a better world" for "he hoped there"), so its
words need not repeat the speakers'. A mic Final that began before the mic was cleaned,
while the speakers spoke, is their sound up to then: whole, where it ended within
``SLACK_S`` of the cleaning (the canceller then closed the utterance), else its words said
before the cleaning began. With headphones the path is never found, and nothing is marked.

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
from earwig.messages import AnyMessage, EchoState, Final, SpeechEnd, SpeechStart, Word

#: Of a mic Final's words, at least this share in the same order as the overlapping
#: speakers' words makes it their echo.
SAME_WORDS = 0.6
#: How far apart in time (after the two sources' clocks are lined up) the two may be: the
#: room, the loopback's buffering, the VAD's lead and pad.
SLACK_S = 1.0
#: Speakers Finals kept to match against: more than overlap any one mic Final.
KEEP_SPEAKERS = 16
#: Words repeated in a run at least this long, each within ``SLACK_S`` of the speakers'
#: word, are the speakers' words: single common words ("the", "and") match by chance.
RUN = 2


def words(text: str) -> list[str]:
    return re.findall(r"[\w']+", text.lower())


class EchoFilter:
    def __init__(self) -> None:
        #: Speakers positions minus mic positions at the same instant (EchoState says).
        self._offset = 0
        #: The mic position from which the canceller cleans it (0: not yet).
        self._cleaned_from = 0
        #: Speakers utterances begun (their start) whose Final has not come.
        self._open: set[int] = set()
        self._speakers: deque[Final] = deque(maxlen=KEEP_SPEAKERS)
        self._held: list[Final] = []

    def heard(self, message: AnyMessage) -> list[Final]:
        """Every message the supervisor has, in order; the Finals to pass on now."""
        if isinstance(message, EchoState):
            self._offset = message.speakers_offset
            self._cleaned_from = self._cleaned_from or message.cleaned_from
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
        return [part for final in held for part in self._judged(final)]

    def _release(self) -> list[Final]:
        ready = [final for final in self._held if not self._waits(final)]
        self._held = [final for final in self._held if self._waits(final)]
        return [part for final in ready for part in self._judged(final)]

    def _span(self, final: Final) -> tuple[int, int]:
        """A mic Final's span in speakers positions, widened by the slack."""
        slack = int(SLACK_S * SAMPLE_RATE)
        return final.start + self._offset - slack, final.end + self._offset + slack

    def _waits(self, final: Final) -> bool:
        """Whether a speakers utterance still open began before this mic Final ended."""
        _, end = self._span(final)
        return any(start < end for start in self._open)

    def _judged(self, final: Final) -> list[Final]:
        """The mic Final as it is, marked echo, or split into its echo and the talker's words."""
        start, end = self._span(final)
        overlapping = [other for other in self._speakers if other.start < end and other.end > start]
        if not words(final.text) or not any(words(other.text) for other in overlapping):
            return [final]
        if final.start >= self._cleaned_from:
            return self._matched(final, overlapping)
        return [kept for part in self._uncleaned(final)
                for kept in ([part] if part.echo else self._matched(part, overlapping))]

    def _matched(self, final: Final, overlapping: list[Final]) -> list[Final]:
        """Echo where its words repeat the overlapping speakers Finals' (whole, or its
        leading and trailing words at their time)."""
        said = [w for other in overlapping for w in words(other.text)]
        mine = words(final.text)
        if not mine:
            return [final]
        same = sum(block.size for block in SequenceMatcher(None, mine, said, autojunk=False).get_matching_blocks())
        if same / len(mine) >= SAME_WORDS:
            return [msgspec.structs.replace(final, echo=True)]
        return self._split(final, [w for other in overlapping for w in other.words])

    def _uncleaned(self, final: Final) -> list[Final]:
        """A mic Final that began while the speakers spoke, before the mic was cleaned: echo
        whole where it ended soon after the cleaning began, else its words said before it."""
        if final.end <= self._cleaned_from + SLACK_S * SAMPLE_RATE:
            return [msgspec.structs.replace(final, echo=True)]
        first = next((i for i, w in enumerate(final.words) if w.start >= self._cleaned_from), len(final.words))
        if first == 0:
            return [final]
        if first == len(final.words):
            return [msgspec.structs.replace(final, echo=True)]
        return [_part(final, 0, first, echo=True), _part(final, first, len(final.words), echo=False)]

    def _split(self, final: Final, played: list[Word]) -> list[Final]:
        """The Final's leading and trailing words that repeat ``played`` (the speakers' timed
        words) at their time, each as a Final marked echo, and the words between."""
        if not final.words or not played:
            return [final]
        echoed = self._echoed(final.words, played)
        first = next((i for i, echo in enumerate(echoed) if not echo), len(echoed))
        last = len(echoed) - next((i for i, echo in enumerate(reversed(echoed)) if not echo), len(echoed))
        if first >= last:
            return [msgspec.structs.replace(final, echo=True)]
        if first == 0 and last == len(echoed):
            return [final]
        parts = []
        if first:
            parts.append(_part(final, 0, first, echo=True))
        parts.append(_part(final, first, last, echo=False))
        if last < len(final.words):
            parts.append(_part(final, last, len(final.words), echo=True))
        return parts

    def _echoed(self, mine: list[Word], played: list[Word]) -> list[bool]:
        """Per word of ``mine``: whether it is in a run of ``RUN`` or more words that repeat
        ``played`` in order, each within ``SLACK_S`` of the played word's time."""
        slack = SLACK_S * SAMPLE_RATE
        heard, spoken = [words(w.text) for w in mine], [words(w.text) for w in played]
        a = [tokens[0] if tokens else "" for tokens in heard]
        b = [tokens[0] if tokens else "" for tokens in spoken]
        echoed = [False] * len(mine)
        for block in SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks():
            timely = [abs(mine[block.a + k].start + self._offset - played[block.b + k].start) <= slack
                      and a[block.a + k] != "" for k in range(block.size)]
            run = 0
            for k, ok in enumerate([*timely, False]):
                if ok:
                    run += 1
                    continue
                if run >= RUN:
                    echoed[block.a + k - run:block.a + k] = [True] * run
                run = 0
        return echoed


def _part(final: Final, first: int, last: int, echo: bool) -> Final:
    """Words ``[first, last)`` of a Final as a Final of their own; the parts' spans meet
    at the first word of each, and together cover the whole Final's."""
    chosen = final.words[first:last]
    start = final.start if first == 0 else chosen[0].start
    end = final.end if last == len(final.words) else final.words[last].start
    return msgspec.structs.replace(final, start=start, end=end, words=chosen, echo=echo,
                                   text="".join(w.text for w in chosen).strip())
