"""``earwig profile``, the report: where every millisecond of a recording went.

A text's path is cut into stages by its stamps (``messages.Stamps``) and the moment it was
delivered; each stage is the difference of two stamps, so the stages of one text add up to
its end-to-end figure exactly. Figures are p50/p95/p99/max over the texts of the run.
"""

from __future__ import annotations

import subprocess
from datetime import datetime
from pathlib import Path

import numpy as np

from earwig.compute import final_model
from earwig.config import SAMPLE_RATE
from earwig.messages import Final, ModelState, Partial, SourceState, Stats
from earwig.profiling.profile_run import Recording
from earwig.profiling.report import table

#: (stage, from, to): the stamps in path order; "delivered_ns" is the recorder's own.
STAGES = (("mel + VAD", "captured_ns", "ready_ns"),
          ("queue", "ready_ns", "pass_start_ns"),
          ("model pass", "pass_start_ns", "pass_end_ns"),
          ("end-of-speech wait", "pass_end_ns", "published_ns"),
          ("pipe", "published_ns", "received_ns"),
          ("delivery", "received_ns", "delivered_ns"))
STAMPS = ("captured_ns", "ready_ns", "pass_start_ns", "pass_end_ns", "published_ns", "received_ns",
          "delivered_ns")


def build(recording: Recording) -> dict:
    finals = [timed(at, m) for at, m in recording.messages if isinstance(m, Final) and m.stamps and m.heard]
    partials = [timed(at, m) for at, m in recording.messages if isinstance(m, Partial) and m.stamps]
    return {
        "run": _run(recording),
        "final": _path_figures(finals),
        "partial": _path_figures(partials),
        "onset_to_first_partial_s": summary(_onset_latencies(recording)),
        "end_of_speech_to_final_s": summary([t["end_to_end_s"] for t in finals if t["text"]]),
        "rtf": {"final": summary([t["rtf"] for t in finals]), "preview": summary([t["rtf"] for t in partials])},
        "mel": _mel_cost(recording),
        "rings": _rings(recording),
        "processes": _processes(recording),
        "gpu": _gpu(recording),
        "models": _models(recording),
        "sources": [{"at_s": _at(recording, at), "source": m.source, "connected": m.connected, "detail": m.detail}
                    for at, m in recording.messages if isinstance(m, SourceState)],
        "finals": finals,
    }


def _run(recording: Recording) -> dict:
    config = recording.config
    return {"date": datetime.now().isoformat(timespec="seconds"), "commit": _commit(),
            "seconds": (recording.ended_ns - recording.started_ns) / 1e9,
            "sources": {s: config.source(s).replay or config.source(s).device or "default"
                        for s in recording.plan.sources},
            "models": {"preview": config.models.preview, "final": final_model(config.models.final)},
            "device": config.device}


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def timed(delivered_ns: int, text: Final | Partial) -> dict:
    """One text's stamps, stages and end-to-end figure (seconds)."""
    stamps = {name: getattr(text.stamps, name, 0) for name in STAMPS[:-1]} | {"delivered_ns": delivered_ns}
    stages = {stage: (stamps[to] - stamps[since]) / 1e9 for stage, since, to in STAGES}
    pass_s = stages["model pass"]
    return {"source": text.source, "start": text.start, "end": text.end,
            "text": text.text if isinstance(text, Final) else f"{text.committed} {text.tentative}".strip(),
            "stamps": stamps, "stages_s": stages,
            "end_to_end_s": (stamps["delivered_ns"] - stamps["captured_ns"]) / 1e9,
            "rtf": pass_s / max((text.end - text.start) / SAMPLE_RATE, 1e-3)}


def _path_figures(texts: list[dict]) -> dict:
    figures = {stage: summary([t["stages_s"][stage] for t in texts]) for stage, _, _ in STAGES}
    figures["end to end"] = summary([t["end_to_end_s"] for t in texts])
    return figures


def summary(values: list[float]) -> dict:
    if not values:
        return {"count": 0}
    data = np.asarray(values, dtype=float)
    return {"count": len(values), "p50": float(np.percentile(data, 50)), "p95": float(np.percentile(data, 95)),
            "p99": float(np.percentile(data, 99)), "max": float(data.max())}


def _onset_latencies(recording: Recording) -> list[float]:
    """Onset (first voiced sample captured) -> the utterance's first Partial delivered."""
    first: dict[tuple[str, int], int] = {}
    for at, message in recording.messages:
        if isinstance(message, Partial):
            first.setdefault((message.source, message.start), at)
    return [(first[key] - onset) / 1e9 for key, onset in recording.onsets_ns.items() if key in first and onset]


def _mel_cost(recording: Recording) -> dict:
    """CPU seconds of the mel frames and of the VAD per second of audio, per source."""
    last = {}
    for _, message in recording.messages:
        if isinstance(message, Stats) and message.actor == "mel":
            last.update(message.counters)
    cost = {}
    for source in recording.plan.sources:
        audio_s = last.get(f"{source}_frames", 0.0) * 160 / SAMPLE_RATE
        if audio_s:
            cost[source] = {"audio_s": audio_s,
                            "frames_cpu_s_per_audio_s": last.get(f"{source}_frames_cpu_s", 0.0) / audio_s,
                            "vad_cpu_s_per_audio_s": last.get(f"{source}_vad_cpu_s", 0.0) / audio_s,
                            "pcm_overruns": last.get(f"{source}_pcm_overruns", 0.0)}
    return cost


def _rings(recording: Recording) -> dict:
    rings = {}
    for name, capacity in recording.ring_capacity.items():
        fill = [s.ring_fill.get(name, 0) for s in recording.samples]
        rings[name] = {"capacity": capacity, "fill_max": max(fill, default=0),
                       "fill_p95": float(np.percentile(fill, 95)) if fill else 0.0}
    return rings


def _processes(recording: Recording) -> dict:
    names = {name for sample in recording.samples for name in sample.cpu_percent}
    out = {}
    for name in sorted(names):
        cpu = [s.cpu_percent[name] for s in recording.samples if name in s.cpu_percent]
        rss = [s.rss_bytes[name] for s in recording.samples if name in s.rss_bytes]
        out[name] = {"cpu_percent_mean": float(np.mean(cpu)), "cpu_percent_max": float(max(cpu)),
                     "rss_max_mb": max(rss) / 2**20}
    return out


def _gpu(recording: Recording) -> dict | None:
    gpu = [s.gpu for s in recording.samples if s.gpu]
    if not gpu:
        return None
    return {"memory_used_max_mb": max(g["memory_used_bytes"] for g in gpu) / 2**20,
            "utilization_percent_mean": float(np.mean([g["utilization_percent"] for g in gpu]))}


def _models(recording: Recording) -> list[dict]:
    return [{"at_s": _at(recording, at), "role": m.role, "model": m.model, "state": m.state, "device": m.device,
             "load_s": m.load_s, "memory_mb": m.memory_bytes / 2**20}
            for at, m in recording.messages if isinstance(m, ModelState)]


def _at(recording: Recording, ns: int) -> float:
    return (ns - recording.started_ns) / 1e9


# --- printing ------------------------------------------------------------------------------


def lines(report: dict) -> list[str]:
    """The report as a terminal reads it: milliseconds, one table per path."""
    run = report["run"]
    out = [f"earwig profile: {run['seconds']:.1f} s, " + ", ".join(f"{s} {w}" for s, w in run["sources"].items())
           + f"; models preview {run['models']['preview']}, final {run['models']['final']}, device {run['device']}"]
    header = ("", "n", "p50 ms", "p95 ms", "p99 ms", "max ms")

    def row(label: str, figures: dict, scale: float = 1e3) -> tuple:
        if not figures.get("count"):
            return (label, 0, "-", "-", "-", "-")
        return (label, figures["count"], *(f"{figures[k] * scale:.0f}" for k in ("p50", "p95", "p99", "max")))

    out += ["", "End of speech -> Final (kept text), by stage:"]
    out += table(header, [row(stage, figures) for stage, figures in report["final"].items()])
    out += ["", "Partial (preview text), by stage:"]
    out += table(header, [row(stage, figures) for stage, figures in report["partial"].items()])
    out += ["", "Latency the user sees:"]
    out += table(header, [row("onset -> first Partial", report["onset_to_first_partial_s"]),
                          row("end of speech -> Final", report["end_of_speech_to_final_s"])])
    out += ["", "Real-time factor of each model pass (pass time / audio time):"]
    out += table(("", "n", "p50", "p95", "p99", "max"),
                 [(label, f.get("count", 0), *(f"{f[k]:.3f}" if f.get("count") else "-"
                                               for k in ("p50", "p95", "p99", "max")))
                  for label, f in report["rtf"].items()])
    if report["mel"]:
        out += ["", "Mel + VAD cost:"]
        out += table(("source", "audio s", "mel CPU ms/s", "VAD CPU ms/s", "PCM overruns"),
                     [(s, f"{m['audio_s']:.1f}", f"{m['frames_cpu_s_per_audio_s'] * 1e3:.1f}",
                       f"{m['vad_cpu_s_per_audio_s'] * 1e3:.1f}", f"{m['pcm_overruns']:.0f}")
                      for s, m in report["mel"].items()])
    out += ["", "Rings:"]
    out += table(("ring", "capacity", "fill p95", "fill max"),
                 [(name, r["capacity"], f"{r['fill_p95']:.0f}", r["fill_max"]) for name, r in report["rings"].items()])
    out += ["", "Processes:"]
    out += table(("process", "CPU % mean", "CPU % max", "RSS max MB"),
                 [(name, f"{p['cpu_percent_mean']:.0f}", f"{p['cpu_percent_max']:.0f}", f"{p['rss_max_mb']:.0f}")
                  for name, p in report["processes"].items()])
    if report["gpu"]:
        out += ["", f"GPU: {report['gpu']['memory_used_max_mb']:.0f} MB in use at most, "
                    f"{report['gpu']['utilization_percent_mean']:.0f} % utilised on average"]
    out += ["", "Models:"]
    out += table(("at s", "role", "model", "state", "device", "load s", "memory MB"),
                 [(f"{m['at_s']:.1f}", m["role"], m["model"], m["state"], m["device"],
                   f"{m['load_s']:.2f}" if m["state"] == "ready" else "", f"{m['memory_mb']:.0f}" if m["memory_mb"] else "")
                  for m in report["models"]])
    return out
