"""PNG plots of the evaluation JSONs (English labels only, so no CJK font is needed).

We draw on a `matplotlib.figure.Figure` with an explicit Agg canvas instead of `pyplot`: that renders
with the Agg backend without switching matplotlib's global backend (which would affect a caller's own
plotting), keeps no global figure registry (no leaks when called in a loop or from Ray workers), and
needs no display. matplotlib is imported inside the functions so importing this module is free.
"""

from __future__ import annotations

from pathlib import Path

PLOT_FILES = {
    "confusion_matrix": "confusion_matrix.png",
    "reliability": "reliability.png",
    "confidence_histogram": "confidence_histogram.png",
    "robustness": "robustness.png",
    "risk_coverage": "risk_coverage.png",
}
"""File names `write_plots` uses inside a run folder; `report.write_report` links the ones that exist."""

CLASS_NAMES = ("negative", "positive")


def _figure(width_in: float, height_in: float):
    """(figure, Agg canvas) of the given size in inches."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=100)
    return fig, FigureCanvasAgg(fig)


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def plot_confusion_matrix(matrix, path: str | Path, names=CLASS_NAMES) -> Path:
    """N×N confusion matrix (rows = true, columns = predicted; `metrics.class_metrics` layout) with counts. Names
    that are not ASCII are shown as class ids (the bundled fonts have no CJK glyphs; the report maps ids to names)."""
    import numpy as np

    counts = np.asarray(matrix, dtype=np.int64)
    side = 3.0 + 0.45 * len(names)
    fig, _ = _figure(side + 0.4, side)
    ax = fig.add_subplot()
    image = ax.imshow(counts, cmap="Blues")
    fig.colorbar(image, ax=ax)
    for (row, col), value in np.ndenumerate(counts):
        dark = value > counts.max() / 2  # white text on dark cells
        ax.text(col, row, str(value), ha="center", va="center", color="white" if dark else "black")
    ticks = [name if name.isascii() else str(i) for i, name in enumerate(names)]
    ax.set_xticks(range(len(names)), labels=ticks, rotation=45 if len(names) > 4 else 0)
    ax.set_yticks(range(len(names)), labels=ticks)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix")
    return _save(fig, path)


def plot_reliability(curve: list[dict], path: str | Path, curve_after: list[dict] | None = None) -> Path:
    """Reliability diagram: accuracy vs mean confidence per bin (from `confidence.reliability_curve`);
    the diagonal is perfect calibration. `curve_after` (after temperature scaling) is drawn when given."""
    fig, _ = _figure(4.5, 4.2)
    ax = fig.add_subplot()
    low = curve[0]["lower"] if curve else 0.5  # 1/N: the least a top-class probability can be
    ax.plot([low, 1.0], [low, 1.0], linestyle="--", color="grey", label="perfect calibration")
    for points, label, marker in ((curve, "model", "o"), (curve_after or [], "after temperature", "s")):
        used = [b for b in points if b["count"]]  # empty bins have no accuracy
        if used:
            xs, ys = [b["mean_confidence"] for b in used], [b["accuracy"] for b in used]
            ax.plot(xs, ys, marker=marker, label=label)
    if curve:
        lowers, uppers = [b["lower"] for b in curve], [b["upper"] for b in curve]
        accs = [b["accuracy"] if b["count"] else 0.0 for b in curve]
        widths = [u - lo for lo, u in zip(lowers, uppers, strict=True)]
        ax.bar(lowers, accs, width=widths, align="edge", alpha=0.2, edgecolor="black", label="bin accuracy")
    ax.set_xlim(low, 1.0)
    ax.set_ylim(0.0, 1.03)  # headroom so points at accuracy 1.0 stay visible
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title("Reliability diagram")
    ax.legend(loc="lower right", fontsize="small")  # below the diagonal is usually empty
    return _save(fig, path)


def plot_confidence_histogram(histogram: dict, path: str | Path) -> Path:
    """Bar chart of `confidence.confidence_histogram` (`edges` has one more entry than `counts`)."""
    edges, counts = histogram["edges"], histogram["counts"]
    fig, _ = _figure(5.0, 3.5)
    ax = fig.add_subplot()
    widths = [b - a for a, b in zip(edges[:-1], edges[1:], strict=True)]
    ax.bar(edges[:-1], counts, width=widths, align="edge", edgecolor="black")
    ax.set_xlabel("confidence = the most probable class's probability")
    ax.set_ylabel("rows")
    ax.set_title("Confidence histogram")
    return _save(fig, path)


def plot_robustness(result: dict, path: str | Path) -> Path:
    """Per perturbation: accuracy (with the clean accuracy as a line) and flip rate, from `robustness_result`."""
    per = result["perturbations"]
    names = list(per)
    fig, _ = _figure(max(5.0, 1.3 * len(names) + 2.0), 5.5)
    ax_acc, ax_flip = fig.add_subplot(2, 1, 1), fig.add_subplot(2, 1, 2)
    ax_acc.bar(names, [per[n]["accuracy"] or 0.0 for n in names], color="tab:blue")
    if result.get("clean_accuracy") is not None:
        ax_acc.axhline(result["clean_accuracy"], color="black", linestyle="--", label="clean accuracy")
        ax_acc.legend(loc="lower right", fontsize="small")
    ax_acc.set_ylim(0.0, 1.08)  # headroom so a clean-accuracy line at 1.0 stays visible
    ax_acc.set_ylabel("accuracy")
    score = result.get("robustness_score")
    ax_acc.set_title("Robustness" + (f" (score {score:.3f})" if score is not None else ""))
    ax_flip.bar(names, [per[n]["flip_rate"] or 0.0 for n in names], color="tab:red")
    ax_flip.set_ylim(0.0, max([0.05] + [(per[n]["flip_rate"] or 0.0) * 1.2 for n in names]))
    ax_flip.set_ylabel("flip rate")
    return _save(fig, path)


def plot_risk_coverage(selective: dict, path: str | Path) -> Path:
    """Error rate of the kept rows against the share kept (most confident first), with the AURC in the title."""
    fig, _ = _figure(5.0, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    curve = selective["risk_coverage"]
    ax.plot(curve["coverage"], curve["risk"], color="tab:blue")
    for target in selective.get("targets", []):
        if target["threshold"] is not None:
            ax.scatter([target["coverage"]], [1 - (target["accuracy"] or 0.0)], color="tab:red", zorder=3)
            ax.annotate(f"{target['target_accuracy']:.2f}", (target["coverage"], 1 - (target["accuracy"] or 0.0)))
    ax.set_xlabel("coverage (share of rows kept)")
    ax.set_ylabel("risk (error rate of kept rows)")
    ax.set_xlim(0.0, 1.0)
    ax.set_title(f"Risk-coverage (AURC {selective['aurc']:.4f})")
    return _save(fig, path)


def write_plots(
    out_dir: str | Path,
    *,
    metrics: dict | None = None,
    confidence: dict | None = None,
    robustness: dict | None = None,
    selective: dict | None = None,
) -> dict[str, Path]:
    """Write every plot whose input is given into `out_dir` under PLOT_FILES names; returns name → path."""
    out_dir = Path(out_dir)
    written = {}
    if metrics is not None:
        names = list(metrics.get("per_class") or CLASS_NAMES)
        path = out_dir / PLOT_FILES["confusion_matrix"]
        written["confusion_matrix"] = plot_confusion_matrix(metrics["confusion_matrix"], path, names)
    if confidence is not None:
        cal = confidence["calibration"]
        written["reliability"] = plot_reliability(
            cal["reliability_curve"],
            out_dir / PLOT_FILES["reliability"],
            cal.get("reliability_curve_after_temperature"),
        )
        written["confidence_histogram"] = plot_confidence_histogram(
            confidence["histogram"], out_dir / PLOT_FILES["confidence_histogram"]
        )
    if robustness is not None:
        written["robustness"] = plot_robustness(robustness, out_dir / PLOT_FILES["robustness"])
    if selective is not None and "aurc" in selective:
        written["risk_coverage"] = plot_risk_coverage(selective, out_dir / PLOT_FILES["risk_coverage"])
    return written
