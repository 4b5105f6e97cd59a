"""`sentiment-ray export`: the merged folder loads in plain transformers and predicts as the model folder does."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import build_model_folder

from benchmarks.plain_export import encode, plain_transformers_p_positive
from sentiment_ray.cli import main
from sentiment_ray.data.corpus import load_offline_splits
from sentiment_ray.inference.predictor import SentimentPredictor


@pytest.mark.parametrize("fixture", ["model_folder", "classifier_folder"])
def test_the_export_loads_in_plain_transformers_with_the_same_predictions_on_200_rows(request, tmp_path, fixture):
    folder = request.getfixturevalue(fixture)
    texts = load_offline_splits(seed=0, val_size=200, test_size=200)[0]["test"]["text"].tolist()[:200]
    assert main(["export", "--model-path", str(folder), "--output", str(tmp_path / "export")]) == 0
    export = tmp_path / "export"
    assert {"config.json", "model.safetensors", "README.md", "sentiment_prompt.json"} <= {
        p.name for p in export.iterdir()
    }
    assert not (export / "adapter_config.json").exists()  # merged: no PEFT needed
    card = (export / "README.md").read_text(encoding="utf-8")
    assert "情感倾向" in card and "正面" in card  # the exact prompt and label words
    from huggingface_hub import ModelCard

    hub = ModelCard.load(export / "README.md").data  # what the Hub reads (tests/unit/test_model_card.py: each field)
    assert (hub.language, hub.pipeline_tag, hub.license) == ("zh", "text-classification", "apache-2.0")
    if fixture == "model_folder":
        assert "from_2_way_softmax" in card and "not tested here" in card
    else:
        assert "AutoModelForSequenceClassification" in card
    ours = SentimentPredictor.from_pretrained(str(folder), device="cpu", precision="fp32").predict_batch(texts)
    plain = plain_transformers_p_positive(export, texts)
    assert [p > 0.5 for p in plain] == [p["label_id"] == 1 for p in ours]
    assert max(abs(a - b["prob_positive"]) for a, b in zip(plain, ours, strict=True)) < 1e-4


def test_export_refuses_a_folder_that_is_not_empty(tmp_path, model_folder):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    assert main(["export", "--model-path", str(model_folder), "--output", str(tmp_path / "out")]) == 2
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


STARS = [
    {"name": n, "values": [v], "word": w} for n, v, w in (("差评", "1", "差"), ("中评", "3", "中"), ("好评", "5", "好"))
]


def test_one_token_label_scoring_exports_as_a_sequence_classifier_with_the_folders_probabilities(
    tmp_path, tiny_path, tokenizer
):
    """3 classes whose words are one token each: plain transformers loads the export as a sequence classifier
    (head = the words' lm_head rows) and, batched with right padding, gives the folder's probabilities on 200 rows."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = build_model_folder(tmp_path / "stars", tiny_path, tokenizer, "label_scoring", labels=STARS)
    export = tmp_path / "export"
    assert main(["export", "--model-path", str(folder), "--output", str(export), "--sequence-classifier"]) == 0
    card = json.loads((export / "sentiment_prompt.json").read_text(encoding="utf-8"))
    assert card["model_class"] == "AutoModelForSequenceClassification" and card["labels"] == ["差评", "中评", "好评"]
    texts = load_offline_splits(seed=0, val_size=200, test_size=200)[0]["test"]["text"].tolist()[:200]
    tok = AutoTokenizer.from_pretrained(export)
    tok.padding_side = "right"
    model = AutoModelForSequenceClassification.from_pretrained(export).eval()
    assert model.config.id2label == {0: "差评", 1: "中评", 2: "好评"} and model.score.weight.shape[0] == 3
    plain = []
    with torch.no_grad():
        for start in range(0, len(texts), 50):
            rows = [{"input_ids": encode(tok, card, t)} for t in texts[start : start + 50]]
            batch = tok.pad(rows, return_tensors="pt")
            plain.extend(model(**batch).logits.float().softmax(-1).tolist())
    ours = SentimentPredictor.from_pretrained(str(folder), device="cpu", precision="fp32").predict_batch(texts)
    assert len({tuple(r["probs"]) for r in ours}) == 1 and len({r["label"] for r in ours}) > 1  # the classes vary
    gap = max(abs(a - b) for p, r in zip(plain, ours, strict=True) for a, b in zip(p, r["probs"].values(), strict=True))
    assert gap < 1e-5, gap


def test_the_sequence_classifier_form_is_refused_for_label_words_of_several_tokens(
    tmp_path, capsys, tiny_path, tokenizer
):
    several = [{**c, "word": w} for c, w in zip(STARS, ("差评，不推荐", "中", "好"), strict=True)]
    folder = build_model_folder(tmp_path / "several", tiny_path, tokenizer, "label_scoring", labels=several)
    out = tmp_path / "export"
    assert main(["export", "--model-path", str(folder), "--output", str(out), "--sequence-classifier"]) == 2
    err = capsys.readouterr().err
    assert "one token each" in err and "'差评，不推荐' (" in err and not (out / "model.safetensors").exists()
