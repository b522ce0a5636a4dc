"""``earwig profile``, the trace: a recording in the Chrome / Perfetto trace-event format
(JSON), to open in ui.perfetto.dev or chrome://tracing.

One track per actor (a thread of one process, "earwig"): each source's capture track
holds its utterances, the preview's and the final's tracks one slice per model pass, the
mel actor's an instant where a text's audio was ready for its model, the supervisor's and the
recorder's ("delivery") an instant per text received and delivered.
Counters: each ring's fill, each process's CPU %. Times are microseconds since the run
began, from the one monotonic clock every process stamps with.
"""

from __future__ import annotations

from earwig.messages import Final, Partial, SpeechEnd, SpeechStart
from earwig.profiling.profile_run import Recording

PID = 1
DELIVERY = "delivery"


def build(recording: Recording) -> dict:
    tracks = [f"capture-{s}" for s in recording.plan.sources] + ["mel", "preview", "final", "supervisor", DELIVERY]
    tid = {name: i + 1 for i, name in enumerate(tracks)}
    events: list[dict] = [{"ph": "M", "name": "process_name", "pid": PID, "args": {"name": "earwig"}}]
    events += [{"ph": "M", "name": "thread_name", "pid": PID, "tid": tid[name], "args": {"name": name}}
               for name in tracks]
    events += [{"ph": "M", "name": "thread_sort_index", "pid": PID, "tid": tid[name], "args": {"sort_index": tid[name]}}
               for name in tracks]

    def us(ns: int) -> float:
        return (ns - recording.started_ns) / 1e3

    opened: dict[tuple[str, int], int] = {}
    passes: set[tuple[str, int]] = set()
    for at, message in recording.messages:
        if isinstance(message, SpeechStart):
            opened[message.source, message.start] = at
        elif isinstance(message, SpeechEnd) and (message.source, message.start) in opened:
            began = opened.pop((message.source, message.start))
            events.append({"ph": "X", "name": "utterance", "pid": PID, "tid": tid[f"capture-{message.source}"],
                           "ts": us(began), "dur": (at - began) / 1e3,
                           "args": {"start": message.start, "end": message.end}})
        elif isinstance(message, (Final, Partial)) and message.stamps:
            stamps, role = message.stamps, "final" if isinstance(message, Final) else "preview"
            args = {"source": message.source, "start": message.start, "end": message.end}
            if (role, stamps.pass_start_ns) not in passes:  # one pass may transcribe a batch
                passes.add((role, stamps.pass_start_ns))
                events.append({"ph": "X", "name": f"{role} pass", "pid": PID, "tid": tid[role],
                               "ts": us(stamps.pass_start_ns),
                               "dur": (stamps.pass_end_ns - stamps.pass_start_ns) / 1e3, "args": args})
            events.append({"ph": "i", "s": "t", "name": f"ready for {role}", "pid": PID, "tid": tid["mel"],
                           "ts": us(stamps.ready_ns), "args": args})
            events.append({"ph": "i", "s": "t", "name": f"{role} received", "pid": PID, "tid": tid["supervisor"],
                           "ts": us(stamps.received_ns), "args": args})
            events.append({"ph": "i", "s": "t", "name": f"{role} delivered", "pid": PID, "tid": tid[DELIVERY],
                           "ts": us(at), "args": args})
    for sample in recording.samples:
        events += [{"ph": "C", "name": f"ring fill {name}", "pid": PID, "ts": us(sample.at_ns), "args": {"items": fill}}
                   for name, fill in sample.ring_fill.items()]
        events += [{"ph": "C", "name": f"CPU % {name}", "pid": PID, "ts": us(sample.at_ns), "args": {"percent": cpu}}
                   for name, cpu in sample.cpu_percent.items()]
    return {"traceEvents": events, "displayTimeUnit": "ms"}
