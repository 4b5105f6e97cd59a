"""Predictor + model folder: save → load gives the same predictions; batching, ordering and bad rows."""

import json

import pytest
import torch
from helpers import randomised_model

from sentiment_ray.inference.predictor import SentimentPredictor
from sentiment_ray.models.folder import META_FILE, save_model_folder

TEXTS = ["质量很好，物流也快", "太差了", "一般般吧，还可以。", "屏幕坏了，客服也不理人，非常失望！！" * 3, "好"]


CASES = [("label_scoring", "lora"), ("classifier", "lora"), ("label_scoring", "full"), ("classifier", "qlora")]


@pytest.mark.parametrize(("strategy_name", "finetune"), CASES)
def test_saved_and_loaded_model_predicts_identically(tmp_path, tiny_path, tokenizer, strategy_name, finetune):
    cfg, strategy, model = randomised_model(tiny_path, tokenizer, strategy_name, finetune)
    in_memory = SentimentPredictor(model, tokenizer, strategy, {}, torch.device("cpu")).predict_batch(TEXTS)
    save_model_folder(model, tokenizer, cfg, tmp_path / "model", metrics={"test": {"accuracy": 0.5}})
    meta = json.loads((tmp_path / "model" / META_FILE).read_text())
    assert meta["strategy"] == strategy_name and meta["finetune"] == finetune and meta["base_model"] == "tiny"
    assert meta["label_words"] == ["负面", "正面"] and meta["max_length"] == 64 and "versions" in meta
    loaded = SentimentPredictor.from_pretrained(tmp_path / "model", device="cpu", precision="fp32")
    reloaded = loaded.predict_batch(TEXTS)
    assert [p["label"] for p in reloaded] == [p["label"] for p in in_memory]
    # QLoRA: the reloaded model runs bitsandbytes' CPU inference kernel (repacked 4-bit weights), the in-memory
    # one the training kernel, so they agree to ~1e-4 rather than bit for bit.
    tolerance = 1e-3 if finetune == "qlora" else 1e-5
    for a, b in zip(reloaded, in_memory, strict=True):
        assert a["prob_positive"] == pytest.approx(b["prob_positive"], abs=tolerance)
    assert len({round(p["prob_positive"], 4) for p in in_memory}) > 1  # weights really differ per text


@pytest.fixture(scope="module")
def predictor(tiny_path, tokenizer):
    _, strategy, model = randomised_model(tiny_path, tokenizer, "label_scoring", "lora")
    return SentimentPredictor(model, tokenizer, strategy, {}, torch.device("cpu"), batch_size=2)


def test_predict_batch_matches_one_at_a_time(predictor):
    batched = predictor.predict_batch(TEXTS, batch_size=3)
    single = [predictor.predict(t) for t in TEXTS]
    for a, b in zip(batched, single, strict=True):
        assert a["label"] == b["label"] and a["prob_positive"] == pytest.approx(b["prob_positive"], abs=1e-5)


def test_prediction_contract(predictor):
    p = predictor.predict("质量很好")
    assert set(p) == {"label", "label_id", "confidence", "probs", "prob_positive", "error"}
    assert p["error"] is None and p["label"] == ("positive" if p["label_id"] == 1 else "negative")
    assert list(p["probs"]) == ["negative", "positive"] and p["probs"]["positive"] == p["prob_positive"]
    assert p["probs"]["negative"] == 1.0 - p["prob_positive"]
    assert p["confidence"] == pytest.approx(max(p["prob_positive"], 1 - p["prob_positive"]))


def test_bad_texts_get_errors_in_place(predictor):
    texts = ["很好", None, "", "   ", 42, "x" * 30_000, "太差"]
    out = predictor.predict_batch(texts)
    assert len(out) == len(texts)
    errors = [o["error"] for o in out]
    assert errors[0] is None and errors[-1] is None
    assert "missing" in errors[1] and "empty" in errors[2] and "empty" in errors[3]
    assert "not a string (got int)" in errors[4] and "too long" in errors[5]
    assert all(o["label"] is None for o in out[1:-1])
    alone = predictor.predict("很好")  # batch vs single row: the same up to float rounding
    assert out[0]["label"] == alone["label"] and out[0]["prob_positive"] == pytest.approx(alone["prob_positive"])


def test_not_a_model_folder_is_a_clear_error(tmp_path):
    from sentiment_ray.errors import ModelLoadError

    with pytest.raises(ModelLoadError, match="not a sentiment-ray model folder"):
        SentimentPredictor.from_pretrained(tmp_path)


def test_batches_respect_the_row_cap_and_the_token_budget():
    import torch

    planner = SentimentPredictor(None, None, None, {}, torch.device("cpu"), batch_size=3, batch_tokens=12)
    lengths = {0: 2, 1: 5, 2: 20, 3: 4, 4: 3, 5: 2, 6: 2, 7: 2, 8: 6}
    encoded = {i: [7] * n for i, n in lengths.items()}
    chunks = planner.batches(encoded)
    assert sorted(i for chunk in chunks for i in chunk) == sorted(lengths)  # every row exactly once
    assert chunks[0] == [2]  # longer than the budget: a batch of its own, never dropped
    for chunk in chunks:
        widths = [lengths[i] for i in chunk]
        assert widths == sorted(widths, reverse=True) and len(chunk) <= 3
        assert len(chunk) == 1 or len(chunk) * widths[0] <= 12  # padded tokens = rows × the longest row
    assert planner.batches(encoded, batch_size=1) == [[i] for i in sorted(lengths, key=lambda i: -lengths[i])]


def test_a_filled_batch_takes_no_much_shorter_row():
    import torch

    planner = SentimentPredictor(None, None, None, {}, torch.device("cpu"), batch_size=100, batch_tokens=400)
    lengths = [50, 49, 48, 30, 30, 29, 10]  # 3 × 50 = 150 ≥ 400 / 4, and 30 < 0.9 × 50: a new batch
    chunks = planner.batches({i: [7] * n for i, n in enumerate(lengths)})
    assert chunks[0] == [0, 1, 2] and chunks[1][:3] == [3, 4, 5]
    small = planner.batches({0: [7] * 50, 1: [7] * 20})  # 50 < 400 / 4: too small to close for padding
    assert small == [[0, 1]]


def test_a_folder_calibrated_before_the_shift_summary_selects_as_before_and_says_shift_not_checked(
    tmp_path, calibrated_folder
):
    import shutil

    from sentiment_ray.shift import NOT_CHECKED

    old = tmp_path / "old"
    shutil.copytree(calibrated_folder, old)
    meta = json.loads((old / META_FILE).read_text())
    del meta["calibration"]["reference"]  # what `calibrate` wrote before the summary existed
    (old / META_FILE).write_text(json.dumps(meta))
    texts = ["质量很好，物流也快", "太差了，不推荐", "一般般吧。", "非常满意"] * 10
    target = min(r["accuracy_lower_bound"] for r in meta["calibration"]["thresholds"] if r["coverage"] > 0.5)
    rows = {}
    for name, folder in (("new", calibrated_folder), ("old", old)):
        rows[name] = SentimentPredictor.from_pretrained(str(folder), device="cpu").predict_batch(
            texts, target_accuracy=target
        )
    assert list(rows["old"]) == list(rows["new"])  # the same rows, flags and thresholds
    assert rows["old"].shift == {"checked": False, "shifted": None, "reason": NOT_CHECKED}
    assert rows["new"].shift["checked"] and rows["new"].tally.rows == len(texts)
