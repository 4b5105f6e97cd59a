"""The training benchmark's measurements: one step's peak memory, token accounting, steady rates, ratios (no Ray)."""

import pytest

from benchmarks.training import build_matrix
from benchmarks.training_memory import StepSpec, measure_step
from benchmarks.training_report import comparisons, steady_rate, step_wall_times, token_accounting
from sentiment_ray.config import PromptConfig, TrainConfig
from sentiment_ray.models.strategies import make_strategy


@pytest.mark.parametrize("strategy", ["label_scoring", "classifier"])
def test_one_training_step_has_a_positive_peak_and_time(strategy):
    # Full finetuning: the step allocates every weight's gradient (tens of MB on the tiny model), so RSS must grow.
    spec = StepSpec("tiny", strategy, "full", batch_size=4, max_length=32, threads=None, timed_steps=1)
    result = measure_step(spec)
    assert 0 < result["pre_step_bytes"] < result["peak_bytes"]
    assert result["step_peak_growth_bytes"] == result["peak_bytes"] - result["pre_step_bytes"]
    assert result["step_peak_growth_bytes"] > 4 * result["trainable_params"] * 0.5  # at least half the fp32 grads
    assert result["measured_step_s"] > 0 and result["median_step_s"] > 0
    assert result["batch_rows"] == 4 and 8 < result["batch_width"] <= 32
    assert 0 < result["batch_real_tokens"] <= 4 * result["batch_width"]
    assert result["memory_kind"].startswith("process RSS")


def test_token_accounting_counts_real_and_padded_tokens(tokenizer):
    strategy = make_strategy("classifier", tokenizer, PromptConfig(), 64)
    texts = ["好", "质量很好，推荐购买", "太差了，物流慢，包装也破了，再也不买了"]
    lengths = [len(strategy.encode(t)) for t in texts]
    assert len(set(lengths)) == 3  # three different lengths, so one batch of all three pads

    alone = token_accounting(strategy, texts, [1, 1, 0], batch_size=1, seed=0)
    assert alone["mean_real_tokens"] == pytest.approx(sum(lengths) / 3)
    assert alone["mean_padded_tokens"] == pytest.approx(sum(lengths) / 3) and alone["padding_share"] == 1

    together = token_accounting(strategy, texts, [1, 1, 0], batch_size=3, seed=0)
    assert together["mean_padded_tokens"] == pytest.approx(max(lengths))  # every row padded to the longest
    assert together["padding_share"] == pytest.approx(sum(lengths) / (3 * max(lengths)))


def test_steady_rate_leaves_out_the_warmup_steps(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(tmp_path / "run"))
    for step, wall in [(1, 100.0), (2, 110.0), (3, 111.0), (4, 112.0), (5, 113.0)]:  # step 1..2: a slow start
        writer.add_scalar("train/loss", 0.5, step, walltime=wall)
    writer.close()
    times = step_wall_times(tmp_path)
    assert times == {1: 100.0, 2: 110.0, 3: 111.0, 4: 112.0, 5: 113.0}
    steady = steady_rate(times, warmup_steps=2, samples_per_step=16)
    assert steady == {"samples_per_s": pytest.approx(16.0), "window_s": pytest.approx(3.0)}  # 3 steps × 16 / 3 s
    with pytest.raises(ValueError, match="past step 5"):
        steady_rate(times, warmup_steps=5, samples_per_step=16)


def test_ratios_against_the_targets():
    rows = [
        {"shape": "tiny", "finetune": "lora", "workers": w, "strategy": s, "samples_per_s": rate}
        for (s, w), rate in {("label_scoring", 1): 9.0, ("classifier", 1): 10.0, ("classifier", 2): 18.0}.items()
    ]
    memory = [
        {
            "shape": "tiny",
            "finetune": "lora",
            "strategy": s,
            "step_peak_growth_mib": g,
            "peak_mib": p,
            "median_step_s": t,
        }
        for s, g, p, t in [("label_scoring", 120.0, 1000.0, 0.2), ("classifier", 100.0, 950.0, 0.1)]
    ]
    found = {(r["comparison"], r["of"]): (r["value"], r["meets"]) for r in comparisons(rows, memory)}
    assert found[("label_scoring / classifier samples/s", "1 worker(s)")] == (pytest.approx(0.9), "no")
    assert found[("2 workers / 1 worker samples/s", "classifier")] == (pytest.approx(1.8), "yes")
    assert ("2 workers / 1 worker samples/s", "label_scoring") not in found  # no 2-worker label-scoring run
    assert found[("label_scoring / classifier step_peak_growth_mib", "one step")] == (pytest.approx(1.2), "no")
    assert found[("label_scoring / classifier peak_mib", "one step")] == (pytest.approx(1000 / 950), "yes")
    assert found[("label_scoring / classifier median_step_s", "one step")] == (pytest.approx(2.0), "")


def test_default_matrix_and_explicit_flags():
    default = build_matrix(["tiny", "1.5b-width"], ["label_scoring", "classifier"])
    assert len([r for r in default if r.shape == "tiny"]) == 3 * 2 * 2  # every mode, 1 and 2 workers
    wide = {(r.finetune, r.workers) for r in default if r.shape == "1.5b-width"}
    assert wide == {("lora", 1), ("full", 1), ("lora", 2)}
    explicit = build_matrix(["1.5b-width"], ["classifier"], ("qlora",), (2,))
    assert [(r.strategy, r.finetune, r.workers) for r in explicit] == [("classifier", "qlora", 2)]


def test_full_finetuning_runs_once_per_embedding_sync():
    runs = build_matrix(["tiny"], ["classifier"], ("full", "lora"), (1, 2), ("rows", "dense"))
    found = [(r.finetune, r.workers, r.embedding_sync) for r in runs]
    default = TrainConfig.embedding_sync  # an adapter leaves the embedding frozen: the sync plays no part
    assert found == [
        ("full", 1, "rows"),
        ("full", 1, "dense"),
        ("full", 2, "rows"),
        ("full", 2, "dense"),
        ("lora", 1, default),
        ("lora", 2, default),
    ]
    rows = [
        {
            "shape": "tiny",
            "finetune": "full",
            "workers": w,
            "strategy": "classifier",
            "samples_per_s": rate,
            "embedding_sync": sync,
        }
        for w, sync, rate in [(1, "rows", 10.0), (1, "dense", 8.0), (2, "rows", 17.0), (2, "dense", 11.0)]
    ]
    found = {(r["comparison"], r["of"]): r["value"] for r in comparisons(rows, [])}
    assert found[("2 workers / 1 worker samples/s", "classifier, embedding sync rows")] == pytest.approx(1.7)
    assert found[("2 workers / 1 worker samples/s", "classifier, embedding sync dense")] == pytest.approx(11 / 8)


def test_ddp_phase_rates_add_each_sync_to_compute_and_optimizer():
    from benchmarks.ddp_phases import step_rates

    phases = {
        1: {"compute": 150.0, "optimizer": 50.0},
        2: {"compute": 150.0, "optimizer": 50.0, "dense_allreduce": 200.0, "bf16_allreduce": 100.0, "row_sync": 0.0},
    }
    rows = {r["setup"]: r for r in step_rates(phases, batch_size=8)}
    assert rows["1 worker"]["samples_per_s"] == pytest.approx(40.0)  # 8 rows per 200 ms
    assert rows["2 workers, dense_allreduce"]["vs_1_worker"] == pytest.approx(1.0)  # 16 rows per 400 ms
    assert rows["2 workers, bf16_allreduce"]["ms_per_step"] == pytest.approx(300.0)
    assert rows["2 workers, row_sync"]["vs_1_worker"] == pytest.approx(2.0)
