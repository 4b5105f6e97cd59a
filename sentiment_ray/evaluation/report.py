"""`report.md`: one human-readable page tying a run folder's evaluation JSONs and plots together.

`write_report` takes the very dicts that are written as JSON (any may be None: its section then says
"not computed") and links the PNGs of `plots.PLOT_FILES` that exist in the folder. `write_evaluation`
writes the JSONs, the plots and the report in one call. The report states which model produced the
numbers and, for the offline `tiny` base model, that they are not a real Qwen model's numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

from sentiment_ray.evaluation.plots import PLOT_FILES, write_plots

JSON_FILES = {
    "metrics": "metrics.json",
    "confidence": "confidence_analysis.json",
    "robustness": "robustness_result.json",
    "baselines": "baseline_comparison.json",
    "selective": "selective_prediction.json",
}
"""File names of the evaluation JSONs in a run folder (docs/contracts.md, run folder)."""

NOT_COMPUTED = "_Not computed in this run._"
TINY_WARNING = (
    "> **Warning: tiny-model numbers.** The base model is the offline `tiny` preset (a randomly initialised "
    "2-layer Qwen2 for tests, CI and first runs). These are tiny-model numbers, not Qwen2.5-1.5B's, and say "
    "nothing about how the real model performs."
)
RANDOM_WEIGHTS_WARNING = (
    "> **Warning: random weights.** The base model `{base}` has the real architecture with random weights "
    "(sentiment_ray/models/shapes.py). Its accuracy numbers mean nothing; its speed, memory and sizes are real."
)


def write_evaluation(
    out_dir: str | Path, *, metrics, confidence, robustness, baselines, meta: dict, selective=None
) -> Path:
    """Write the evaluation JSONs (those not None), the plots and `report.md` into `out_dir`; returns the report."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = {"metrics": metrics, "confidence": confidence, "robustness": robustness, "baselines": baselines}
    for key, value in {**results, "selective": selective}.items():
        if value is not None:
            (out_dir / JSON_FILES[key]).write_text(json.dumps(value, ensure_ascii=False, indent=2) + "\n")
    write_plots(out_dir, metrics=metrics, confidence=confidence, robustness=robustness, selective=selective)
    return write_report(out_dir, **results, meta=meta, selective=selective)


def write_report(
    out_dir: str | Path, *, metrics, confidence, robustness, baselines, meta: dict, selective=None
) -> Path:
    """Write `out_dir/report.md` from the evaluation dicts and `meta` (model description); returns its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = [
        _header(meta, out_dir),
        _metrics_section(metrics, out_dir),
        _calibration_section(confidence, out_dir),
        _abstention_section(confidence),
        _selective_section(selective, out_dir, (metrics or {}).get("shift")),
        _robustness_section(robustness, out_dir),
        _baselines_section(baselines),
    ]
    path = out_dir / "report.md"
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    return path


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v).replace("|", "\\|").replace("\n", " ") for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _images(out_dir: Path, *names: str) -> str:
    """Markdown image links for the plots that exist in `out_dir` (relative links: the folder can move)."""
    links = [f"![{name}]({PLOT_FILES[name]})" for name in names if (out_dir / PLOT_FILES[name]).exists()]
    return "\n\n".join(links)


def _header(meta: dict, out_dir: Path) -> str:
    from sentiment_ray.models.shapes import is_random_weights
    from sentiment_ray.models.tiny import TINY_MODEL_ID

    base = meta.get("base_model")
    model_line = (
        f"**Model:** `{meta.get('model', meta.get('model_path', 'unknown'))}` — base model `{base}`, "
        f"strategy `{meta.get('strategy')}`, fine-tuning `{meta.get('finetune', meta.get('finetune_mode'))}`."
    )
    lines = ["# Evaluation report", "", model_line]
    if base == TINY_MODEL_ID:
        lines += ["", TINY_WARNING]
    elif is_random_weights(str(base)):
        lines += ["", RANDOM_WEIGHTS_WARNING.format(base=base)]
    details = [(k, meta[k]) for k in ("dataset", "split", "n_test", "machine", "command", "created") if k in meta]
    if details:
        lines += [""] + [f"- **{k}:** {v}" for k, v in details]
    files = [f"[{name}]({name})" for name in JSON_FILES.values() if (out_dir / name).exists()]
    if files:
        lines += ["", "Data files: " + ", ".join(files) + "."]
    return "\n".join(lines)


def _metrics_section(metrics: dict | None, out_dir: Path) -> str:
    head = "## Metrics"
    if metrics is None:
        return f"{head}\n\n{NOT_COMPUTED}"
    keys = ("n", "accuracy", "precision", "recall", "f1", "macro_f1", "micro_f1", "weighted_f1", "roc_auc")
    table = _table(["metric", "value"], [[k, metrics[k]] for k in keys if k in metrics])
    names = list(metrics["per_class"])
    per_class = _table(
        ["id", "class", "precision", "recall", "F1", "support"],
        [
            [i, n, *(metrics["per_class"][n][k] for k in ("precision", "recall", "f1", "support"))]
            for i, n in enumerate(names)
        ],
    )
    matrix = _table(
        ["true \\ predicted", *names], [[n, *row] for n, row in zip(names, metrics["confusion_matrix"], strict=True)]
    )
    note = (
        "Precision, recall and F1 are for the positive class; `macro_f1` averages both classes."
        if "f1" in metrics
        else "`roc_auc` is the one-vs-rest macro average; the plot names the classes by id."
    )
    parts = (
        head,
        table,
        note,
        "Per class:",
        per_class,
        "Confusion matrix:",
        matrix,
        _images(out_dir, "confusion_matrix"),
    )
    return "\n\n".join(p for p in parts if p)


def _calibration_section(confidence: dict | None, out_dir: Path) -> str:
    head = "## Confidence and calibration"
    if confidence is None:
        return f"{head}\n\n{NOT_COMPUTED}"
    cal = confidence["calibration"]
    rows = [
        ["rows scored", confidence["n"]],
        ["mean confidence", confidence["mean_confidence"]],
        ["share with confidence > 0.9", confidence["share_above_0_9"]],
        ["ECE", cal["ece"]],
        ["fitted temperature T", cal["temperature"]],
        ["ECE after temperature", cal["ece_after_temperature"]],
        ["NLL before / after temperature", f"{_fmt(cal['nll_before'])} / {_fmt(cal['nll_after'])}"],
    ]
    notes = (
        f"ECE uses {cal['bins']} equal-width bins over the top-class confidence in "
        f"[{_fmt(cal['bin_range'][0])}, 1]. "
        f"Temperature: {cal['temperature_method']}; "
        "fitted and evaluated on the same rows, so it shows how much miscalibration one global scale explains."
    )
    if cal.get("temperature_at_bound"):
        notes += " The fitted T sits at the edge of its search range (degenerate fit, e.g. no errors)."
    lowest = confidence["lowest_confidence"][:5]
    low_table = _table(
        ["id", "label", "predicted", "confidence", "text"],
        [[r["id"], r["label"], r["predicted"], r["confidence"], _short(r["text"])] for r in lowest],
    )
    parts = [head, _table(["statistic", "value"], rows), notes]
    parts += [_images(out_dir, "reliability", "confidence_histogram")]
    parts += ["Least confident rows (all in `confidence_analysis.json`):", low_table] if lowest else []
    return "\n\n".join(p for p in parts if p)


def _short(text, limit: int = 60) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= limit else text[:limit] + "…"


def _abstention_section(confidence: dict | None) -> str:
    head = "## Abstention"
    if confidence is None:
        return f"{head}\n\n{NOT_COMPUTED}"
    ab = confidence["abstention"]
    intro = (
        f"Target precision {_fmt(ab['target_precision'])}, where precision means {ab['precision_definition']}; "
        f"the threshold is {ab.get('rule', 'the lowest that reaches it')}."
    )
    if ab["threshold"] is None:
        outcome = f"No threshold reaches it: {ab['reason']}."
    else:
        outcome = (
            f"Answering only when confidence >= {_fmt(ab['threshold'])} keeps {_fmt(ab['coverage'])} of rows "
            f"({ab['n_kept']}) at precision {_fmt(ab['precision_at_threshold'])} "
            f"(lower bound {_fmt(ab.get('accuracy_lower_bound'))})."
        )
    curve = _table(
        ["threshold", "coverage", "precision"], [[c["threshold"], c["coverage"], c["precision"]] for c in ab["curve"]]
    )
    return "\n\n".join([head, intro, outcome, curve])


def _selective_section(selective: dict | None, out_dir: Path, shift: dict | None = None) -> str:
    head = "## Selective prediction (the folder's calibration)"
    if selective is None or "aurc" not in selective:
        return f"{head}\n\n{NOT_COMPUTED if selective is None else selective.get('reason', NOT_COMPUTED)}"
    parts = [head, f"Area under the risk-coverage curve (AURC): {_fmt(selective['aurc'])} (lower is better)."]
    parts.append(_images(out_dir, "risk_coverage"))
    if "before_after" not in selective:
        return "\n\n".join([*parts, f"No target accuracies: {selective['reason']}."])
    ba = selective["before_after"]
    rows = [[k.upper(), ba["before"][k], ba["after"][k]] for k in ("ece", "nll", "brier")]
    parts.append(f"Calibration (temperature {_fmt(ba['temperature'])}), on these rows:")
    parts.append(_table(["metric", "uncalibrated", "calibrated"], rows))
    parts.append(
        "Per calibration and target accuracy: the lowest threshold whose Clopper-Pearson lower bound on that "
        "calibration's rows reaches the target (promised; the promise holds for data like those rows), against the "
        "accuracy and coverage of the kept rows here (achieved)."
    )
    rows = [
        [name, _fitted(cal["fitted_on"]), *_target_cells(t)]
        for name, cal in selective.get("by_calibration", {"default": {"fitted_on": {}, **selective}}).items()
        for t in cal["targets"]
    ]
    header = ["calibration", "fitted on", "target", "threshold", "promised (lower bound)", "achieved", "coverage"]
    parts.append(_table([*header, "kept"], rows))
    parts.append(_shift_paragraph(shift))
    return "\n\n".join(p for p in parts if p)


def _target_cells(t: dict) -> list:
    if t["threshold"] is None:
        return [t["target_accuracy"], "none", None, None, 0.0, 0]
    return [t["target_accuracy"], t["threshold"], t["promised_lower_bound"], t["accuracy"], t["coverage"], t["n_kept"]]


def _fitted(fitted: dict) -> str:
    from sentiment_ray.shift import describe_source

    return f"{fitted.get('rows', '?')} rows of {describe_source(fitted)}"


def _shift_paragraph(shift: dict | None) -> str:
    """Whether these rows are like the default calibration's rows (sentiment_ray/shift.py)."""
    if not shift:
        return ""
    if not shift.get("checked"):
        return f"Shift check: not checked ({shift['reason']})."
    tests = "; ".join(f"{k}: p = {v['p_value']:.2g}, effect {v['effect']:.3f}" for k, v in shift["tests"].items())
    verdict = (
        f"**shifted** ({', '.join(shift['shifted_tests'])}): {shift['advice']}" if shift["shifted"] else "like them"
    )
    return (
        f"Shift check of these {shift['rows']:,} rows against the {shift['calibration_rows']:,} rows the default "
        f"calibration was fitted on: {verdict}. Tests: {tests}."
    )


def _robustness_section(robustness: dict | None, out_dir: Path) -> str:
    head = "## Robustness"
    if robustness is None:
        return f"{head}\n\n{NOT_COMPUTED}"
    summary = (
        f"Clean accuracy {_fmt(robustness['clean_accuracy'])}; robustness score {_fmt(robustness['robustness_score'])} "
        f"({robustness['robustness_score_definition']}). Accuracy drop: {robustness['accuracy_drop_definition']}. "
        f"Seed {robustness['seed']}; {robustness['n_clean_errors']} of {robustness['n']} rows failed to score clean."
    )
    header = [
        "perturbation",
        "accuracy",
        "accuracy drop",
        "flip rate",
        "flip rate (changed rows)",
        "texts changed",
        "rows",
    ]
    rows = [
        [
            name,
            r["accuracy"],
            r["accuracy_drop"],
            r["flip_rate"],
            r["flip_rate_on_changed"],
            r["changed_text_share"],
            r["n_evaluated"],
        ]
        for name, r in robustness["perturbations"].items()
    ]
    return "\n\n".join(p for p in (head, summary, _table(header, rows), _images(out_dir, "robustness")) if p)


def _baselines_section(baselines: dict | None) -> str:
    head = "## Baseline comparison"
    if baselines is None:
        return f"{head}\n\n{NOT_COMPUTED}"
    keys = baselines["metrics_compared"]
    rows = [[r["name"], r["role"]] + [r.get(k) for k in keys] for r in baselines["rows"]]
    descriptions = [f"- **{r['name']}**: {r['description']}" for r in baselines["rows"] if r.get("description")]
    return "\n\n".join([head, _table(["system", "role", *keys], rows), "\n".join(descriptions)]).rstrip()
