"""Subcommands that work on one model folder without Ray: `calibrate` (rewrites its meta), `export` and `info`."""

from __future__ import annotations


def cmd_calibrate(args) -> int:
    from sentiment_ray.data.formats import ReadOptions
    from sentiment_ray.evaluation.calibrate import calibrate_folder

    options = ReadOptions(encoding=args.encoding, quoting=args.quoting, sheet=args.sheet)
    cal = calibrate_folder(
        args.model_path,
        args.data,
        text_column=args.text_column,
        label_column=args.label_column,
        read_options=options,
        device=args.device,
        name=args.name,
    )
    before, after, fitted = cal["before"], cal["after"], cal["fitted_on"]
    print(
        f"temperature {cal['temperature']:.4f} fitted on {fitted['rows']} rows ({fitted['part']} of {fitted['data']})"
    )
    print(f"ECE {before['ece']:.4f} -> {after['ece']:.4f}, NLL {before['nll']:.4f} -> {after['nll']:.4f}")
    where = f"calibrations.{args.name}" if args.name else "calibration"
    print(f"stored in {args.model_path}/sentiment_meta.json ({where})")
    for target in (0.9, 0.95):
        print(f"target {target}: {_margin(cal, target)}")
    return 0


def _margin(cal: dict, target: float) -> str:
    """The promise's margin at a target: threshold, coverage, the lower bound and the n it rests on."""
    from sentiment_ray.calibration import lowest_reaching

    row, reason = lowest_reaching(cal["thresholds"], target, cal["delta"])
    if row is None:
        return reason
    return (
        f"threshold {row['threshold']:.4f} keeps {row['coverage']:.1%} of these rows; accuracy of kept "
        f"{row['accuracy']:.4f}, lower bound {row['accuracy_lower_bound']:.4f} on n={row['n_kept']}"
    )


def cmd_export(args) -> int:
    import torch

    from sentiment_ray.models.export import export_model

    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    folder = export_model(args.model_path, args.output, dtype, args.sequence_classifier)
    print(f"exported: {folder} (README.md: the model card)")
    return 0


def cmd_info(args) -> int:
    import json

    from sentiment_ray.models.describe import describe, summary_lines

    about = describe(args.path)
    print(json.dumps(about, ensure_ascii=False, indent=2) if args.json else "\n".join(summary_lines(about)))
    return 0
