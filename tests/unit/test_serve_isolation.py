"""Serve's batch fallback: when a batched model call raises, only the text that fails alone fails.

The predictor here is a stand-in that raises on one poison text: a fault we cannot provoke in the real
predictor any more (it turns every bad text it knows into a per-text error), so the fallback is driven directly.
"""

import asyncio

from sentiment_ray.inference.serve_model import isolated_predictions


class PoisonablePredictor:
    def __init__(self):
        self.calls = []

    def predict_batch(self, texts, calibration=None):  # the real signature's keywords Serve passes
        self.calls.append(list(texts))
        if "poison" in texts:
            raise RuntimeError("CUDA error: device-side assert")
        return [{"label": "positive", "error": None, "text": t} for t in texts]


def test_a_failing_batch_is_retried_text_by_text():
    predictor = PoisonablePredictor()
    results = asyncio.run(isolated_predictions(predictor, ["好", "poison", "坏"]))
    assert [r["text"] for r in (results[0], results[2])] == ["好", "坏"]
    assert isinstance(results[1], RuntimeError)
    assert predictor.calls == [["好", "poison", "坏"], ["好"], ["poison"], ["坏"]]


def test_a_good_batch_is_one_call():
    predictor = PoisonablePredictor()
    assert len(asyncio.run(isolated_predictions(predictor, ["好", "坏"]))) == 2
    assert predictor.calls == [["好", "坏"]]
