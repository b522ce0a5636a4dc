"""``earwig profile``, the plot: each Final's end of speech -> Final as a bar cut into its
stages, along the run, with both latency figures in the title (PNG, matplotlib).

Why stacked bars: the question a latency figure raises is which stage to cut, and a bar per
Final shows it at a glance, and whether it changes along the run (a model load, a backlog).
"""

from __future__ import annotations

from pathlib import Path

from earwig.profiling.profile_report import STAGES

COLOURS = ("#4c72b0", "#dd8452", "#c44e52", "#8172b3", "#937860", "#55a868")


def write(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display: write the file only
    from matplotlib import pyplot

    finals = [f for f in report["finals"] if f["text"]]
    figure, axes = pyplot.subplots(figsize=(10, 6), layout="constrained")
    bottom = [0.0] * len(finals)
    for (stage, _, _), colour in zip(STAGES, COLOURS):
        heights = [f["stages_s"][stage] for f in finals]
        axes.bar(range(len(finals)), heights, bottom=bottom, color=colour, label=stage)
        bottom = [b + h for b, h in zip(bottom, heights)]
    axes.set_xticks(range(len(finals)), [f"{f['source']} {f['end'] / 16000:.1f} s" for f in finals],
                    rotation=60, ha="right", fontsize=7)
    axes.set_ylabel("seconds")
    axes.legend(loc="upper right", fontsize=8)
    axes.set_title("End of speech -> Final by stage, one bar per Final in order\n"
                   f"{_figure('end of speech -> Final', report['end_of_speech_to_final_s'])}; "
                   f"{_figure('onset -> first Partial', report['onset_to_first_partial_s'])}", fontsize=10)
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def _figure(label: str, summary: dict) -> str:
    if not summary.get("count"):
        return f"{label}: none"
    return f"{label}: p50 {summary['p50'] * 1e3:.0f} ms, p95 {summary['p95'] * 1e3:.0f} ms"
