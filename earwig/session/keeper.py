"""The session's keeper: what a session keeps of what its pipeline says, in one place.

Why apart from the supervisor: an OTP supervisor spawns, watches and restarts its children
and never reads what they say. The session's own facts (the log every Final is written to
before anyone sees it, the audio beside it, the echo and playback marks on Finals, which
model wrote each line, when a message reached the supervisor's process) are domain
knowledge, and they live here. The supervisor hands every message it is about to publish
to ``heard`` and publishes what comes back, in that order: a mic Final the echo filter holds
comes back later, with the speakers Final it waited for.

Why the audio is kept on a thread of its own: encoding FLAC takes milliseconds every half
second, and the supervisor's event loop routes every message of the session (the critical
path from the VAD's SpeechEnd to the final actor). The log's fsync stays on that path on
purpose: a Final is on disk before it is shown.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from earwig.messages import ActorFailed, AnyMessage, Final, ModelState, Partial, PlayedBack, Source
from earwig.session.audio import KEEP_EVERY_S, SessionAudio
from earwig.session.echo_filter import EchoFilter
from earwig.session.log import SessionLog
from earwig.session.played_back import PlayedBackSpans
from earwig.shm import Ring

#: The model role whose Finals are the kept text, and the one a retry may load beside it.
FINAL_ROLE, RETRY_ROLE = "final", "retry"


@dataclass(frozen=True)
class Keeping:
    """What a session keeps: the session log (``log``: its path), the PCM rings of ``audio``
    beside it (``session.audio``), after the session too where ``audio_after_session``;
    ``echo_filter``: the mic's Finals that repeat the speakers are marked echo
    (``echo_filter``), where the mic's echo is cancelled. Plain data, so a client can send
    it to the supervisor's process."""

    log: Path | None = None
    audio: dict[Source, str] = field(default_factory=dict)
    audio_after_session: bool = True
    echo_filter: bool = False


class SessionKeeper:
    """Give it the rings (``start``), every message to publish (``heard``), then ``end`` and
    ``close`` once the actors are gone. Without a ``Keeping`` it keeps nothing and only
    stamps when messages arrived."""

    def __init__(self, keeping: Keeping = Keeping()) -> None:
        self.log = SessionLog(path=keeping.log) if keeping.log else None
        self.audio = (SessionAudio(keeping.log, keeping.audio, keeping.audio_after_session)
                      if keeping.log and keeping.audio else None)
        self._echo = EchoFilter() if keeping.echo_filter else None
        self._played_back = PlayedBackSpans()
        #: The model each role has loaded now: who wrote a Final that does not say.
        self._models: dict[str, str] = {}
        self._warned_log = self._warned_audio = False
        #: The log refused the last Final (its ``problem`` says why).
        self._log_failed = False
        self._audio_stop = threading.Event()
        self._audio_thread: threading.Thread | None = None

    def start(self, rings: dict[str, Ring]) -> None:
        """The rings exist: keep their audio from their first sample, on a thread."""
        if self.audio is None:
            return
        self.audio.start(rings)
        self._audio_thread = threading.Thread(target=self._keep_audio, name="earwig-session-audio", daemon=True)
        self._audio_thread.start()

    def heard(self, message: AnyMessage) -> list[AnyMessage]:
        """What to publish now for ``message``, in order: itself (stamped), or for a Final
        the Finals the echo filter lets go, each marked, and written to the log first; and
        a warning, once, when the log or the audio could not be kept."""
        if isinstance(message, (Partial, Final)) and message.stamps is not None:
            message = msgspec.structs.replace(message, stamps=msgspec.structs.replace(
                message.stamps, received_ns=time.monotonic_ns()))
        if isinstance(message, PlayedBack):
            self._played_back.played(message)
        elif isinstance(message, ModelState):
            self._model_state(message)
        if isinstance(message, Final):
            paired = self._echo is not None and not message.revised
            out: list[AnyMessage] = [self._kept(final) for final in (self._echo.heard(message) if paired else [message])]
        else:
            if self._echo is not None:
                self._echo.heard(message)  # when the speakers talk, how the clocks line up
            out = [message]
        return out + self._problems()

    def end(self) -> list[AnyMessage]:
        """The session ends: the mic Finals still waiting for a speakers Final, judged on
        what came, kept."""
        held = self._echo.flush() if self._echo is not None else []
        return [self._kept(final) for final in held] + self._problems()

    def close(self) -> None:
        """The last of the audio, then the files and the log."""
        if self._audio_thread is not None:
            self._audio_stop.set()
            self._audio_thread.join()
        if self.audio is not None:
            self.audio.close()
        if self.log is not None:
            self.log.close()

    def _kept(self, final: Final) -> Final:
        final = self._played_back.mark(final)
        if self.log is not None:
            model = final.model or (final.revised and self._models.get(RETRY_ROLE)) or self._models.get(FINAL_ROLE, "")
            self._log_failed = not self.log.append(final, model)
        return final

    def _model_state(self, state: ModelState) -> None:
        if state.state == "ready":
            self._models[state.role] = state.model
        else:
            self._models.pop(state.role, None)

    def _problems(self) -> list[AnyMessage]:
        problems: list[AnyMessage] = []
        if self.log is not None and self.log.problem is not None and not self._warned_log and self._log_failed:
            self._warned_log = True
            problems.append(ActorFailed(actor="session-log", fatal=False, error=self.log.problem,
                                        fix="the text stays on screen; free space or make the data dir "
                                            "($XDG_DATA_HOME/earwig) writable to keep the next ones"))
        if self.audio is not None and self.audio.problem is not None and not self._warned_audio:
            self._warned_audio = True
            problems.append(ActorFailed(actor="session-audio", fatal=False, error=self.audio.problem,
                                        fix="the text is still logged; free space to keep the audio next time"))
        return problems

    def _keep_audio(self) -> None:
        while not self._audio_stop.wait(KEEP_EVERY_S) and self.audio.problem is None:
            self.audio.keep()
