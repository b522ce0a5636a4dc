"""Every message survives the wire, and the pipe transport works from asyncio (uvloop)."""

import multiprocessing as mp

import msgspec
import pytest
import uvloop

from earwig import messages as m
from earwig.channel import Channel

pytestmark = pytest.mark.pure

EXAMPLES = [
    m.PauseSource(source="mic", paused=True), m.PlayedBack(source="speakers", start=16000, end=64000), m.Retry(source="mic", start=16000, end=48000, prompt="Before it.", audio="/tmp/s-mic.flac"), m.Shutdown(),
    m.Heartbeat(actor="capture-mic", sent_ns=123),
    m.ActorReady(actor="capture-mic", pid=42),
    m.ActorFailed(actor="capture-mic", error="boom", fix="do this", fatal=False),
    m.Level(source="mic", end=800, rms_db=-20.5, peak_db=-3.0, clipped=False),
    m.SourceEnded(source="speakers", end=176000),
    m.SourceState(source="mic", connected=False, detail="fakemic: disconnected"),
    m.SpeechStart(source="mic", start=16000),
    m.SpeechPause(source="mic", start=16000, end=40000),
    m.SpeechResume(source="mic", start=16000, at=44000),
    m.SpeechEnd(source="mic", start=16000, end=48000),
    m.Partial(source="speakers", start=0, end=8000, committed="and so", tentative="my fellow",
              stamps=m.Stamps(captured_ns=1, ready_ns=2, pass_start_ns=3, pass_end_ns=4, published_ns=5)),
    m.Final(source="mic", start=0, end=176000, text="Ask not.", language="en",
            words=[m.Word("Ask", 0, 4000, 0.9), m.Word("not.", 4000, 8000, 0.8)]),
    m.ServerState(up=False, model="base at http://127.0.0.1:8000/v1", problem="cannot reach it"),
    m.ModelState(role="final", model="base", state="ready", device="cpu", memory_bytes=10),
    m.ModelState(role="preview", model="nope", state="failed", error="unknown model", fix="use tiny"),
    m.Final(source="mic", start=0, end=16000, text="Ask not.", language="en", echo=True),
    m.Final(source="speakers", start=0, end=16000, text="Ask not.", language="en", model="base at http://h/v1"),
    m.EchoState(heard=True, delay_ms=40.5, erle_db=31.0, linear_erle_db=18.5, speakers_offset=-24000),
    m.Stats(actor="capture-mic", counters={"items_written": 5.0}),
    m.DictationCommand(action="toggle"),
    m.DictationStart(start=16000), m.DictationStop(start=16000, end=96000, cancel=False),
    m.DictationSpan(start=16000, end=96000, utterances=1),
    m.DictationState(state="held", detail="the focus moved", text="Hello there."),
]


def test_the_examples_cover_every_message_type():
    assert {type(e) for e in EXAMPLES} == set(m.AnyMessage.__args__)


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda e: type(e).__name__)
def test_every_message_round_trips(message):
    assert m.decode(m.encode(message)) == message


def test_an_unknown_or_malformed_message_is_rejected():
    with pytest.raises(msgspec.ValidationError):
        m.decode(msgspec.msgpack.encode({"type": "Nope"}))
    with pytest.raises(msgspec.ValidationError):
        m.decode(msgspec.msgpack.encode({"type": "Level", "source": "radio", "end": 1,
                                         "rms_db": 0.0, "peak_db": 0.0, "clipped": False}))


def test_channel_carries_messages_both_ways_and_reports_a_closed_peer():
    async def scenario():
        ours, theirs = mp.Pipe(duplex=True)
        channel, peer = Channel(ours), Channel(theirs)
        for message in EXAMPLES:
            peer.send(message)
        received = [await channel.receive() for _ in EXAMPLES]
        channel.send(m.Shutdown())
        back = await peer.receive()
        peer.close()
        return received, back, await channel.receive()

    received, back, after_close = uvloop.run(scenario())
    assert received == EXAMPLES
    assert back == m.Shutdown()
    assert after_close is None


def test_a_final_is_readable_when_it_says_something_and_is_not_echo():
    said = m.Final(source="mic", start=0, end=16000, text="Hello.", language="en")
    assert said.readable
    assert not msgspec.structs.replace(said, text="").readable
    assert not msgspec.structs.replace(said, echo=True).readable
