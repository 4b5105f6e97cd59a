"""Evaluation suite: confidence / calibration, robustness to text perturbations, baselines, plots, report.

Everything here takes plain Python / numpy inputs (labels, P(positive), texts, or a `predict_fn` returning
Prediction dicts), so both strategies and every caller (CLI, Ray jobs, tests) go through the same code.
No Ray, no model and nothing heavy is imported here: import the submodule you need, e.g.

    from sentiment_ray.evaluation.confidence import confidence_analysis
    from sentiment_ray.evaluation.robustness import robustness_result

Modules: `confidence`, `perturb`, `robustness`, `baselines`, `plots`, `report`.
"""
