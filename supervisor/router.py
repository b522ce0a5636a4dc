"""Where each message goes, and what the pipeline must be told again after a restart.

Why apart from the supervisor: an OTP supervisor spawns, watches and restarts, and never
reads what its children say. The facts that outlive an actor (a source has ended or is
paused, an utterance or a dictation is open, a SpeechEnd still owes its Final, what each
source said last) are domain knowledge; here they are a declared table and a pure class
that takes messages and returns decisions, tested message by message, and the supervisor
only delivers what the router decides.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from earwig.actors.runtime import ActorSpec
from earwig.messages import (AnyMessage, DictationSpan, DictationStart, DictationStop, Final, PauseSource, Retry,
                             SourceEnded, SpeechEnd, SpeechStart)

#: The actor that answers every SpeechEnd with a Final: the router keeps the SpeechEnds not
#: yet answered and sends them again to it after a crash, so an utterance whose pass was in
#: flight is redone, and a second answer to one is dropped.
ANSWERER = "final"
#: Finals per source re-sent to a restarted final actor: more than its context holds
#: (``final_context.KEEP_WORDS``) in most conversations.
RECENT_FINALS = 8


@dataclass(frozen=True)
class Lasting:
    """A message that stays true after it is delivered, until ``ended_by`` (a message of the
    same source) or a newer one of its type and source: a listener that restarts is told it
    again, so a restarted mel actor resumes the open utterance and a restarted capture
    actor stays paused."""

    ended_by: tuple[type, ...] = ()
    #: Told again only to the actor that said it: what it must know of its own past.
    to_sender: bool = False


#: Every lasting fact. Dictation is of the mic. The last SpeechEnd of a source goes back to
#: the mel actor alone: its VAD begins after it (a process killed between announcing an
#: utterance and storing where its successor begins would otherwise be heard twice); to the
#: model actors it would be an utterance owed again.
LASTING: dict[type, Lasting] = {
    SourceEnded: Lasting(),
    PauseSource: Lasting(),
    SpeechStart: Lasting(ended_by=(SpeechEnd,)),
    SpeechEnd: Lasting(to_sender=True),
    DictationStart: Lasting(ended_by=(DictationSpan,)),
    DictationStop: Lasting(ended_by=(DictationSpan,)),
}
#: While one of these is lasting, someone is speaking (or holds the dictation key): no
#: model is evicted.
SPEAKING = (SpeechStart, DictationStart)
#: What brings an evicted model actor that listens to it back: speech or dictation began,
#: or the user asked for a line again (the model loads for it, its state on screen).
WAKING = (*SPEAKING, Retry)
#: Speech and dictation events and retries: each one counts as activity for idle eviction.
ACTIVITY = (SpeechStart, SpeechEnd, DictationStart, DictationSpan, Retry)


def _source(message: AnyMessage) -> str:
    return getattr(message, "source", "mic")


class Router:
    """Feed it every message (``heard``) and every Final of the actor that answers speech
    (``answered``); it says who gets each one, and what a restarted actor must be told."""

    def __init__(self, actors: Iterable[ActorSpec]) -> None:
        specs = list(actors)
        self._listeners: dict[type, list[str]] = {}
        for spec in specs:
            for kind in spec.listens:
                self._listeners.setdefault(kind, []).append(spec.name)
        self._listens = {spec.name: spec.listens for spec in specs}
        self._answerer = ANSWERER if ANSWERER in self._listens else None
        #: Each lasting fact, and who said it.
        self._lasting: dict[tuple[type, str], tuple[AnyMessage, str | None]] = {}
        #: SpeechEnds not yet answered by a Final, in order.
        self._unanswered: dict[tuple[str, int, int], SpeechEnd] = {}
        #: Each source's last Finals: context for a restarted final actor, so a kill changes
        #: no text.
        self._recent: dict[str, deque[Final]] = {}
        #: When speech or dictation last began or ended (the caller's clock).
        self.last_activity = 0.0

    def heard(self, message: AnyMessage, sender: str | None = None, now: float = 0.0) -> list[str]:
        """Record what ``message`` makes true; return the actors it goes to (those that
        listen for its type, never its sender)."""
        kind = type(message)
        for fact, lasting in LASTING.items():
            if kind in lasting.ended_by:
                self._lasting.pop((fact, _source(message)), None)
        if kind in LASTING:  # the newest fact last: facts are told again in the order they became true
            self._lasting.pop((kind, _source(message)), None)
            self._lasting[kind, _source(message)] = message, sender
        if isinstance(message, SpeechEnd) and self._answerer is not None:
            self._unanswered[message.source, message.start, message.end] = message
        if kind in ACTIVITY:
            self.last_activity = now
        return [name for name in self._listeners.get(kind, ()) if name != sender]

    def answered(self, final: Final) -> bool:
        """A Final of the actor that answers speech: True for the first answer to its
        SpeechEnd and for a retry's revision (the supervisor logs and publishes them), False
        for a second answer (a restarted final actor redid an utterance whose Final had
        already come)."""
        if final.revised:
            return True
        if self._unanswered.pop((final.source, final.start, final.end), None) is None:
            return False
        self._recent.setdefault(final.source, deque(maxlen=RECENT_FINALS)).append(final)
        return True

    def answers(self, actor: str) -> bool:
        return actor == self._answerer

    def told_again(self, actor: str) -> list[AnyMessage]:
        """What a (re)started ``actor`` is sent before anything new: the lasting facts it
        listens to, in the order they became true; to the actor that answers speech also each
        source's recent Finals and then the SpeechEnds it still owes a Final."""
        listens = self._listens[actor]
        again = [message for (kind, _), (message, sender) in self._lasting.items()
                 if kind in listens and (sender == actor or not LASTING[kind].to_sender)]
        if actor == self._answerer:
            again += [final for finals in self._recent.values() for final in finals]
            again += self._unanswered.values()
        return again

    @property
    def quiet(self) -> bool:
        """No one is speaking or dictating, and every SpeechEnd has its Final."""
        return not self._unanswered and not any(kind in SPEAKING for kind, _ in self._lasting)

    @staticmethod
    def wakes(message: AnyMessage) -> bool:
        """Whether ``message`` brings an evicted listener back."""
        return isinstance(message, WAKING)
