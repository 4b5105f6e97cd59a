"""The one predictor: used by the CLI, evaluation, Ray Data batch scoring and Ray Serve.

Prediction contract (docs/contracts.md), one dict per input text:
    label          the predicted class's name ("positive" | "negative" for binary sentiment) | None (when error)
    label_id       its id (the index in the folder's `labels`) | None
    confidence     the top class's probability
    probs          {class name: probability} in class order (they sum to 1), calibrated by the folder's
                   temperature unless `calibrated=False`; None when error
    prob_positive  P(positive): only where the classes are binary sentiment (negative, positive)
    error          None, or why this text could not be scored (the row is kept, never dropped)
With `target_accuracy` or `min_confidence` (selective prediction, sentiment_ray/calibration.py), also:
    abstained      True when the row goes to a person (confidence below the threshold, or no threshold
                   reaches the target), False when it is kept; None for a row with an error
    threshold      the confidence threshold used, or None when no threshold reaches the target
    reason         None, or why every row abstains
`calibration="NAME"` uses a calibration `calibrate --as NAME` stored (its temperature and thresholds). The list
`predict_batch` returns is a `Predictions`: besides the rows, `token_lengths` and `shift` (is this batch like the
calibration rows? sentiment_ray/shift.py), side channels that leave the rows as they are.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from sentiment_ray.calibration import abstain, named, predicted_ids
from sentiment_ray.inference import DEFAULT_BATCH_ROWS, DEFAULT_BATCH_TOKENS
from sentiment_ray.labels import LabelSet, binary_sentiment
from sentiment_ray.location import Location
from sentiment_ray.models.strategies import pad_batch

_LOAD_LOCK = threading.Lock()
DEFAULT_MAX_TEXT_CHARS = 20_000
"""Longer texts get an error instead of being tokenised: a guard against runaway inputs, far above any review."""
PADDING_SLACK = 0.9
"""Once a forward holds a quarter of its token budget, it takes no row shorter than this share of its width:
every token of padding is compute thrown away, and on this project's CPU the matmuls already run near peak from
a few hundred tokens a forward (results/bench/scoring.md). A GPU needs far more rows in flight, hence its budget."""


def resolve_device_dtype(device: str = "auto", precision: str = "auto") -> tuple[torch.device, torch.dtype]:
    from sentiment_ray.errors import ConfigError

    try:
        dev = torch.device(
            "cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device)
        )
    except RuntimeError:
        raise ConfigError(f"--device {device!r} is not a device: use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: torch sees no CUDA device here; use --device cpu or auto")
    from sentiment_ray.models.loading import compute_dtype

    return dev, compute_dtype(precision, dev, inference=True)


def text_problem(text, max_chars: int) -> str | None:
    """Why `text` cannot be scored, or None."""
    if text is None or (isinstance(text, float) and math.isnan(text)):  # pandas reads a missing string as NaN
        return "text is missing (null)"
    if not isinstance(text, str):
        return f"text is not a string (got {type(text).__name__})"
    if not text.strip():
        return "text is empty"
    if len(text) > max_chars:
        return f"text is too long ({len(text)} characters > {max_chars})"
    try:
        text.encode("utf-8")  # C speed; fails only on a lone surrogate
    except UnicodeEncodeError as err:  # valid in JSON ("\ud800") and in a Python str, but tokenizers raise on it
        return f"text holds a lone surrogate (\\u{ord(text[err.start]):04x}), which is not valid Unicode"
    return None


class Predictions(list):
    """`predict_batch`'s rows, one per text, plus side channels that leave them as they are:

    token_lengths  tokens each text was scored with (prompt included), None for a row with an error
    tally          the rows counted for the shift check (`shift.ShiftTally`), None when the calibration has no summary
    shift          the shift check of these rows against the calibration (`shift.check_shift`), computed when read
    """

    token_lengths: list
    tally: object = None
    calibration: dict | None = None
    calibration_name: str | None = None

    @property
    def shift(self) -> dict:
        from sentiment_ray.shift import check_shift

        return check_shift(self.calibration, self.tally, self.calibration_name)


class SentimentPredictor:
    def __init__(
        self,
        model,
        tokenizer,
        strategy,
        meta: dict,
        device: torch.device,
        batch_size: int = DEFAULT_BATCH_ROWS,
        max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
        batch_tokens: int | None = None,
        calibrated: bool = True,
    ):
        self.model, self.tokenizer, self.strategy, self.meta = model, tokenizer, strategy, meta
        self.labels = getattr(strategy, "labels", None) or binary_sentiment()  # the batch planner needs no strategy
        self.calibration = meta.get("calibration")
        self.calibrated = calibrated
        self.device, self.batch_size, self.max_text_chars = device, batch_size, max_text_chars
        self.batch_tokens = batch_tokens or DEFAULT_BATCH_TOKENS.get(device.type, DEFAULT_BATCH_TOKENS["cuda"])

    @classmethod
    def from_pretrained(
        cls,
        model_path: str | Path,
        device: str = "auto",
        precision: str = "auto",
        batch_size: int = DEFAULT_BATCH_ROWS,
        max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
        batch_tokens: int | None = None,
        calibrated: bool = True,
    ) -> SentimentPredictor:
        """`batch_size` caps the rows of one forward and `batch_tokens` its padded tokens (None: per device);
        `calibrated=False` returns the model's raw probabilities instead of temperature-scaled ones."""
        from sentiment_ray.models.folder import load_model_folder

        dev, dtype = resolve_device_dtype(device, precision)
        with _LOAD_LOCK:  # transformers' loading is not thread-safe (two threads saw each other's meta tensors)
            model, tokenizer, strategy, meta = load_model_folder(model_path, dev, dtype)
        return cls(model, tokenizer, strategy, meta, dev, batch_size, max_text_chars, batch_tokens, calibrated)

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def predict(self, text: str, **selective) -> dict:
        return self.predict_batch([text], **selective)[0]

    def predict_batch(
        self,
        texts: Sequence,
        batch_size: int | None = None,
        *,
        target_accuracy: float | None = None,
        min_confidence: float | None = None,
        calibration: str | None = None,
    ) -> Predictions:
        """Predictions in input order; invalid texts get an `error` entry instead of raising.

        `target_accuracy` (or `min_confidence`) adds `abstained` / `threshold` / `reason` to every row;
        `calibration` names the calibration to use (None: the folder's own).
        """
        block = named(self.meta, calibration)  # an unknown name fails before any forward
        selection = self.selection(target_accuracy, min_confidence, calibration)  # and so does a bad target
        temperature = block["temperature"] if self.calibrated and block else 1.0
        results, lengths = self._predictions(texts, batch_size, temperature)
        rows = Predictions(results if selection is None else [abstain(row, *selection) for row in results])
        rows.token_lengths = lengths
        if self.calibrated and block and block.get("reference"):
            from sentiment_ray.shift import ShiftTally

            threshold = selection[0] if selection and target_accuracy is not None else None
            confidences = [row["confidence"] for row in results]
            rows.tally = ShiftTally.of(block["reference"], confidences, lengths, threshold)
        rows.calibration, rows.calibration_name = (block if self.calibrated else None), calibration
        return rows

    def selection(
        self, target_accuracy=None, min_confidence=None, calibration: str | None = None
    ) -> tuple[float | None, str | None] | None:
        """(threshold, reason when there is none) for a selective request, or None for a plain one."""
        from sentiment_ray.calibration import selection

        return selection(named(self.meta, calibration), target_accuracy, min_confidence)

    def _predictions(self, texts: Sequence, batch_size: int | None, temperature: float) -> tuple[list, list]:
        """(rows, tokens per row: None for an error row)."""
        results: list[dict | None] = [None] * len(texts)
        valid = []
        for i, text in enumerate(texts):
            problem = text_problem(text, self.max_text_chars)
            if problem:
                results[i] = self._error_row(problem)
            else:
                valid.append(i)
        encoded = dict(zip(valid, self.strategy.encode.many([texts[i] for i in valid]), strict=True))
        for index, probs in self._probabilities(encoded, batch_size or self.batch_size):
            results[index] = prediction_row(_calibrate(probs, temperature), self.labels)
        return results, [len(encoded[i]) if i in encoded else None for i in range(len(texts))]

    def _probabilities(self, encoded: dict[int, list[int]], batch_size: int):
        """Yield (input index, [N] class probabilities), one forward per chunk of `batches`."""
        for chunk in self.batches(encoded, batch_size):
            batch = pad_batch([encoded[i] for i in chunk], self.tokenizer.pad_token_id)
            probs = self.score_batch(batch).tolist()
            if len(self.labels) == 2:  # binary: P(class 0) = 1 - P(class 1) exactly, as outputs always had it
                probs = [[1.0 - p[1], p[1]] for p in probs]
            yield from zip(chunk, probs, strict=True)

    def batches(self, encoded: dict[int, list[int]], batch_size: int | None = None) -> list[list[int]]:
        """Input indices grouped into forwards, longest-first: at most `batch_size` rows and `batch_tokens`
        padded tokens each (a row longer than the budget still gets a forward of its own), and little padding
        (PADDING_SLACK)."""
        order = sorted(encoded, key=lambda i: len(encoded[i]), reverse=True)
        rows_cap, chunks, chunk = batch_size or self.batch_size, [], []
        for index in order:
            if chunk and self._closes(len(chunk), len(encoded[chunk[0]]), len(encoded[index]), rows_cap):
                chunks.append(chunk)
                chunk = []
            chunk.append(index)
        return chunks + ([chunk] if chunk else [])

    def _closes(self, rows: int, width: int, next_length: int, rows_cap: int) -> bool:
        """Whether a forward of `rows` rows padded to `width` tokens takes no row of `next_length` tokens."""
        if rows == rows_cap or (rows + 1) * width > self.batch_tokens:
            return True
        return rows * width >= self.batch_tokens // 4 and next_length < PADDING_SLACK * width

    @torch.inference_mode()
    def score_batch(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Class probabilities of a padded batch ([batch, N] float32 on CPU)."""
        batch = {k: v.to(self.device) for k, v in batch.items()}
        scores = self.strategy.scores(self.model, batch)
        return torch.softmax(scores.float(), dim=-1).cpu()

    def _error_row(self, problem: str) -> dict:
        return error_row(problem, self.labels)


def token_lengths(folder: Location | str | Path, texts: list) -> list[int | None]:
    """Tokens each text is scored with (prompt included), encoded as the folder's predictor encodes it, without
    loading weights; None for a text the predictor gives an error instead (predictor.text_problem)."""
    from sentiment_ray.models.folder import labels_of, prompt_of, read_meta
    from sentiment_ray.models.loading import load_tokenizer
    from sentiment_ray.models.strategies import make_strategy

    folder = Location.of(folder)
    meta = read_meta(folder)
    tokenizer = load_tokenizer(str(folder.local_folder()))
    strategy = make_strategy(meta["strategy"], tokenizer, prompt_of(meta), meta["max_length"], labels_of(meta))
    valid = [i for i, text in enumerate(texts) if text_problem(text, DEFAULT_MAX_TEXT_CHARS) is None]
    lengths: list[int | None] = [None] * len(texts)
    for i, ids in zip(valid, strategy.encode.many([texts[i] for i in valid]), strict=True):
        lengths[i] = len(ids)
    return lengths


def _calibrate(probs: list[float], temperature: float) -> list[float]:
    """softmax(log P / T) (T = 1: unchanged)."""
    if temperature == 1.0:
        return probs
    from sentiment_ray.calibration import apply_temperature

    return apply_temperature([probs], temperature)[0].tolist()


def prediction_row(probs: list[float], labels: LabelSet) -> dict:
    """The prediction of one text from its class probabilities, by the project's one rule (`predicted_ids`)."""
    label_id = int(predicted_ids(np.asarray([probs]))[0])
    row = {
        "label": labels.names[label_id],
        "label_id": label_id,
        "confidence": max(probs),
        "probs": dict(zip(labels.names, probs, strict=True)),
    }
    if labels.binary_sentiment:
        row["prob_positive"] = probs[1]
    return {**row, "error": None}


def error_row(problem: str, labels: LabelSet) -> dict:
    row = {"label": None, "label_id": None, "confidence": None, "probs": None}
    if labels.binary_sentiment:
        row["prob_positive"] = None
    return {**row, "error": problem}
