"""The reference algorithm scorer agrees with our predictor; the bench's padding and head-size counts are right."""

import pytest

from benchmarks.common import head_columns
from benchmarks.reference import ReferenceScorer
from sentiment_ray.config import PromptConfig
from sentiment_ray.inference.predictor import SentimentPredictor
from sentiment_ray.models.folder import save_zero_shot_folder
from sentiment_ray.models.strategies import pad_batch

TEXTS = ["质量很好，物流也快", "太差了", "一般般吧，还可以。", "屏幕坏了，客服也不理人，非常失望！！" * 3, "好"]


@pytest.fixture(scope="module")
def zero_shot_folder(tmp_path_factory):
    return save_zero_shot_folder("tiny", tmp_path_factory.mktemp("zs") / "zs", PromptConfig())


@pytest.mark.parametrize("folder_fixture", ["zero_shot_folder", "model_folder"])
def test_reference_matches_predictor_probabilities(request, folder_fixture):
    folder = request.getfixturevalue(folder_fixture)  # zero-shot tiny base, and a LoRA folder with random adapters
    reference = ReferenceScorer(folder).predict_batch(TEXTS)
    ours = SentimentPredictor.from_pretrained(folder, device="cpu", precision="fp32").predict_batch(TEXTS)
    # compare probabilities, not raw scores: a scorer may normalise over 2 label rows or the whole vocab
    for ref, our in zip(reference, ours, strict=True):
        assert ref["prob_positive"] == pytest.approx(our["prob_positive"], abs=1e-4)
        assert ref["label"] == our["label"]
    assert len({round(r["prob_positive"], 4) for r in reference}) > 1  # the texts really score differently


def test_reference_refuses_a_classifier_folder(classifier_folder):
    with pytest.raises(ValueError, match="needs a 'label_scoring' folder"):
        ReferenceScorer(classifier_folder)


def test_bench_padding_counts_the_predictors_own_forwards(model_folder, tokenizer):
    from benchmarks.scoring import padding_stats

    predictor = SentimentPredictor.from_pretrained(model_folder, device="cpu", precision="fp32")
    lengths = [5, 9, 2, 9, 3, 7, 1]
    real, padded = padding_stats(predictor, lengths, (3, 20))
    chunks = predictor.batches({i: [1] * n for i, n in enumerate(lengths)}, 3)
    batches = [pad_batch([[1] * lengths[i] for i in chunk], tokenizer.pad_token_id) for chunk in chunks]
    assert padded == sum(b["input_ids"].numel() for b in batches) and padded <= 20 * len(batches)
    assert real == sum(int(b["attention_mask"].sum()) for b in batches) == sum(lengths)


def test_head_columns_counts_the_projected_rows(model_folder, classifier_folder):
    import torch

    from sentiment_ray.models.folder import load_model_folder

    cpu = torch.device("cpu")
    model, tokenizer, strategy, _ = load_model_folder(classifier_folder, cpu, torch.float32)
    assert head_columns(model, strategy, tokenizer) == 2  # hidden → 2 classes
    model, tokenizer, strategy, _ = load_model_folder(model_folder, cpu, torch.float32)
    assert head_columns(model, strategy, tokenizer) == 2  # label scoring computes only the two label rows
    model, tokenizer, strategy, _ = load_model_folder(model_folder, cpu, torch.float32, specialize=False)
    assert head_columns(model, strategy, tokenizer) == model.config.vocab_size  # the stock lm_head
