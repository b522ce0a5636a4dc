"""The final actor's requests to a transcription server (``server.url``): each utterance's
audio sent once, at its first pause (the VAD's SpeechPause: the local model reads it then
too, so the server's text is as early; if speech resumes the request is dropped and the
longer span goes at the next pause), its answer recorded as the utterance's Final where the
local model has not answered it first; and a line the user asks to be read again (``Retry``),
which the server's model reads while the server is up. Which utterances go, and when the
local model steps in, is ``final_route.ServerRoute``'s decision; this module holds the
requests in flight.

A stretch the VAD heard no speech in (``audio.unheard``) is this machine's to read: whether
it holds words is decided by the model's own probabilities of them, which a server's answer
does not carry (vLLM's has no word probabilities nor no-speech figure).

What leaves the machine: each utterance's samples, from its first to its last, as WAV;
the user's ``models.initial_prompt``; with ``server.prompt``, the text its source said
before it. With ``models.task = "translate"`` the server translates (to English), as the
local model would.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import msgspec

from earwig.actors.final_ledger import FinalLedger, Utterance
from earwig.actors.final_route import RouteChange, ServerRoute
from earwig.actors.model_session import ModelParams
from earwig.actors.runtime import Actor
from earwig.config import SAMPLE_RATE, ServerConfig
from earwig.decoding.hallucinations import kept_final
from earwig.decoding.served import Server, ServerFailed, served_transcript
from earwig.messages import ActorFailed, Final, Retry, ServerState, Stamps
from earwig.shm import Ring


#: The shortest wait for audio the ring does not hold yet (a capture block is 10-100 ms).
AUDIO_POLL_S = 0.01


class ServedFinals:
    def __init__(self, actor: Actor, params: ModelParams, ledger: FinalLedger, changed: asyncio.Event,
                 publish: Callable[[], None]) -> None:
        """``publish``: puts out the Finals that are due, called as an answer is recorded: the
        actor's loop may be waiting on a local pass of the same utterance (begun when the
        answer was later than a local pass takes), which would hold the answer back until
        it ends (1.2-1.5 s of the 2.1 s end of speech -> served Final in bench server)."""
        self._actor, self._ledger, self._changed, self._publish = actor, ledger, changed, publish
        server: ServerConfig = params.server
        self._server = Server(server, params.task, params.initial_prompt)
        self._prompt = server.prompt
        self._language = None if params.language == "auto" else params.language
        self._rings = {source: Ring.attach(name) for source, name in params.pcm_rings.items()}
        self.route = ServerRoute(server.wait_s)
        #: Requests in flight: when the local model may read each utterance (monotonic s), and
        #: the route's failures when it was sent.
        self._in_flight: dict[Utterance, tuple[asyncio.Task, float, int]] = {}
        #: Utterances sent once: never sent again, whatever became of the request.
        self._sent: set[Utterance] = set()
        self._newest: Utterance | None = None
        #: When an utterance to send, whose audio the ring did not hold yet, should be there.
        self._audio_at: float | None = None
        #: Requests sent for a guess whose SpeechEnd has not come: dropped if speech resumes.
        self._guessed: set[Utterance] = set()
        #: The engine that wrote the kept text of an utterance: the server's model, by name.
        self.model = f"{self._server.model} at {self._server.url}"

    def ended(self, utterance: Utterance) -> None:
        """A SpeechEnd: the newest utterance, which a try of a server that is down reads (the
        local model, guessing at the pause, has often answered it already); its guess's
        request, if one went, is now the request for it."""
        self._newest = utterance
        self._guessed.discard(utterance)

    def send(self) -> None:
        """While the server is up, every owed utterance not sent yet, and each source's guess
        (its SpeechPause's span: read ahead, as the local model reads it when it writes the
        text; the request is dropped when speech resumes); while it is down, the newest
        utterance, once the route says a try is due."""
        guesses = self._ledger.guesses()
        for void in [u for u in self._guessed if u not in guesses]:
            self._guessed.discard(void)
            if (request := self._in_flight.pop(void, None)) is not None:
                request[0].cancel()
        wanted = [*(u for u in self._ledger.unanswered() if u.heard), *guesses] if self.route.up \
            else [u for u in [self._newest] if u is not None]
        self._sent &= {*self._ledger.unanswered(), *guesses, self._newest}
        now = time.monotonic()
        self._audio_at = None
        for utterance in wanted:
            if utterance in self._sent:
                continue
            if not self.route.use_server(now):
                return
            samples = self._rings[utterance.source].samples(utterance.start, utterance.end)
            if samples is None:
                if (due := self._audio_due_s(utterance)) is None:  # gone: the local model reads it from its frames
                    self._sent.add(utterance)
                else:
                    self._audio_at = now + due if self._audio_at is None else min(self._audio_at, now + due)
                continue
            self._sent.add(utterance)
            if utterance in guesses:
                self._guessed.add(utterance)
                self._ledger.counters["served_guesses"] += 1
            self.route.sent()
            local_at = now + self.route.local_after((utterance.end - utterance.start) / SAMPLE_RATE)
            task = asyncio.create_task(self._ask(utterance, samples.copy()))
            self._in_flight[utterance] = (task, local_at, self.route.failures)

    def waiting(self) -> frozenset[Utterance]:
        """The utterances the local model leaves to the server for now."""
        now = time.monotonic()
        return frozenset(u for u, (_, local_at, _) in self._in_flight.items() if local_at > now)

    def next_turn_s(self) -> float | None:
        """Seconds until the next thing to do: the local model may read an utterance it leaves
        to the server now, a server that is down is due its try with the utterance heard last,
        or the audio of an utterance to send is all in the ring."""
        now = time.monotonic()
        turns = [local_at - now for _, local_at, _ in self._in_flight.values() if local_at > now]
        if self._newest is not None and self._newest not in self._sent:
            turns += [due for due in [self.route.next_try_s(now)] if due is not None]
        if self._audio_at is not None:
            turns.append(max(self._audio_at - now, 0.0))
        return min(turns) if turns else None

    def _audio_due_s(self, utterance: Utterance) -> float | None:
        """Seconds until the ring holds the rest of ``utterance`` at the pace of speech (a
        pause's span ends ``vad.pad_ms`` past the audio the VAD had read when it sent it);
        None when its audio is gone from the ring."""
        ring = self._rings[utterance.source]
        missing = utterance.end - ring.published * ring.spec.item_len
        return max(missing / SAMPLE_RATE, AUDIO_POLL_S) if missing > 0 else None

    def answered_locally(self, utterance: Utterance, audio_s: float, took_s: float) -> None:
        """The local model wrote ``utterance``'s Final. A request still in flight for it came
        too late for the live text: while the server is up, it counts as failed (and is
        tried again later); a try of a server that is down runs on, since its answer, used
        or not, is what says the server is back; so does one sent before a failure handed
        its utterance to the local model."""
        self.route.local_pass(audio_s, took_s)
        request = self._in_flight.get(utterance)
        if request is not None and self.route.up and request[2] == self.route.failures:
            self._in_flight.pop(utterance)[0].cancel()
            self._tell(self.route.failed(time.monotonic(), "the server answered later than this machine's "
                                                            "model would"))

    async def retried(self, retry: Retry, samples) -> Final | None:
        """The line read again by the server, marked ``revised``, while the server is up (its
        model is the one the user pointed earwig at, usually larger than this machine's);
        None where it is down or fails now (a warning, as for a live request): the local
        retry model reads it then. The server is asked as for a live utterance, without
        beam search (the API has no such field)."""
        if not self.route.up:
            return None
        sent_after = self.route.failures
        prompt = retry.prompt if self._prompt else ""
        try:
            served = await self._server.transcribe(samples, self._language, prompt)
        except ServerFailed as failed:
            self._tell(self.route.failed(time.monotonic(), failed.problem, sent_after))
            return None
        final = kept_final(retry.source, retry.start, retry.end, served_transcript(served, len(samples) / SAMPLE_RATE))
        return msgspec.structs.replace(final, revised=True, model=self.model)

    async def close(self) -> None:
        for task, _, _ in self._in_flight.values():
            task.cancel()
        await self._server.aclose()
        for ring in self._rings.values():
            ring.close()

    async def _ask(self, utterance: Utterance, samples) -> None:
        sent_ns = time.monotonic_ns()
        prompt = self._ledger.context.before(utterance.source, utterance.start) if self._prompt else ""
        try:
            served = await self._server.transcribe(samples, self._language, prompt)
        except ServerFailed as failed:
            _, _, sent_after = self._in_flight.pop(utterance, (None, 0.0, None))
            now = time.monotonic()
            self._tell(self.route.failed(now, failed.problem, sent_after))
            # The others in flight are the local model's at once: a failing server is not waited for.
            self._in_flight = {u: (task, min(local_at, now), sent) for u, (task, local_at, sent)
                               in self._in_flight.items()}
        else:
            _, _, sent_after = self._in_flight.pop(utterance, (None, 0.0, None))
            self._tell(self.route.answered(sent_after))
            captured_ns = self._rings[utterance.source].stamp_ns(utterance.end - 1) or 0
            stamps = Stamps(captured_ns=captured_ns, ready_ns=sent_ns, pass_start_ns=sent_ns,
                            pass_end_ns=time.monotonic_ns())
            audio_s = (utterance.end - utterance.start) / SAMPLE_RATE
            final = kept_final(utterance.source, utterance.start, utterance.end, served_transcript(served, audio_s), stamps)
            if self._ledger.wanted(utterance):
                self._ledger.record(utterance, msgspec.structs.replace(final, model=self.model), 0.0)
                self._publish()
        self._changed.set()

    def _tell(self, change: RouteChange | None) -> None:
        """A change of engine: on every screen's status line; a warning where the server failed."""
        if change is None:
            return
        self._actor.publish(ServerState(up=not change.warning, model=self.model,
                                        problem=change.text if change.warning else ""))
        if change.warning:
            self._actor.publish(ActorFailed(actor=self._actor.name, fatal=False, error=change.text,
                                            fix="check the server at server.url; earwig tries it again by itself"))
