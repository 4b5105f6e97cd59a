"""The model side of `sentiment-ray serve`: a Serve deployment that holds the predictors, batches the texts of
concurrent requests, and keeps each model's shift-check windows.

Only the HTTP front (`serve.SentimentAPI`) calls it, through a deployment handle: a prediction is idempotent, so
when a model replica dies under a request, the front sends that request to another replica
(docs/guide/serving.md, "Faults").
"""

import asyncio
import collections
import logging

import ray
from ray import serve

from sentiment_ray.calibration import abstain, named, threshold_for
from sentiment_ray.errors import ConfigError
from sentiment_ray.inference.http_api import ApiError
from sentiment_ray.inference.serve_config import DEFAULT_MODEL, ServeConfig
from sentiment_ray.inference.shift_window import ShiftWindow
from sentiment_ray.location import Location

FIELDS = ServeConfig.model_fields
log = logging.getLogger(__name__)


async def isolated_predictions(predictor, texts: list[str], calibration: str | None = None) -> list:
    """Predictions for a dynamic batch that mixes texts of many requests; one bad text never fails the others.

    The predictor already turns every text it can recognise as bad into a per-text `error`. If the batched call
    still raises, each text is retried alone: a text that fails alone gets its exception back (its request
    answers 500), and the other texts get their predictions.
    """
    try:
        return await asyncio.to_thread(predictor.predict_batch, texts, calibration=calibration)
    except Exception as err:  # noqa: BLE001 - any model failure: fall back to one text at a time
        log.warning(
            "a batch of %d texts failed (%s: %s); retrying them one by one", len(texts), type(err).__name__, err
        )
    results = []
    for text in texts:
        try:
            results.extend(await asyncio.to_thread(predictor.predict_batch, [text], calibration=calibration))
        except Exception as err:  # returned to the request that sent this text
            results.append(err)
    return results


def multiplexed(load, max_models: int):
    """`load(model_id)` behind Serve's per-replica LRU of models (`@serve.multiplexed`), with the bound taken from
    the config at replica start: the decorator's argument is fixed where it is written, and a bound method cannot
    carry the wrapper Serve attaches, so a plain function wraps it."""

    async def get_model(model_id: str):
        return await load(model_id)

    return serve.multiplexed(max_num_models_per_replica=max_models)(get_model)


@serve.deployment
class SentimentModel:
    """Predictors of every configured model, one dynamic batch queue, shift windows. The default model loads before
    the replica takes requests; the others on first use."""

    async def __init__(self, config: dict):  # Serve awaits an async constructor before it routes to the replica
        import torch

        from sentiment_ray.models.folder import read_meta

        cfg = ServeConfig.model_validate(config)
        # Ray sets OMP_NUM_THREADS=1 in actors; use the CPUs this replica reserved instead.
        torch.set_num_threads(max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1))))
        # A URI (s3://…) stays one: each replica reads it through its node's cached copy.
        self.models = {name: Location.of(path) for name, path in cfg.all_models().items()}
        self.metas = {name: read_meta(path) for name, path in self.models.items()}  # fail fast on bad folders
        self.device, self.precision = cfg.device, cfg.precision
        self.target_accuracy = cfg.target_accuracy  # the threshold the shift windows count abstentions at
        self._predict_batched.set_max_batch_size(cfg.max_batch_size)
        self._predict_batched.set_batch_wait_timeout_s(cfg.batch_wait_timeout_s)
        self.get_model = multiplexed(self._load, cfg.max_models_per_replica)
        self.batch_sizes: collections.Counter = collections.Counter()
        self.model_loads: collections.Counter = collections.Counter()  # loads started per model id (/stats)
        self._loading: dict[str, asyncio.Future] = {}
        self.shift_window, self.windows = cfg.shift_window, {}  # (model id, calibration) -> ShiftWindow
        # Serve routes a model's requests to the replicas that hold it. A replica that loaded lazily stayed cold
        # beside a warm one until that one died, then loaded under the load while every request waited on it
        # (a minute at 1.5 B parameters). Loaded here, each replica, and each one Serve starts in place of a dead
        # one, takes requests only with the default model in memory.
        await self._loaded(DEFAULT_MODEL)

    async def _load(self, model_id: str):
        from sentiment_ray.inference.predictor import SentimentPredictor

        self.model_loads[model_id] += 1
        path = self.models[model_id]
        return await asyncio.to_thread(SentimentPredictor.from_pretrained, path, self.device, self.precision)

    async def _loaded(self, model_id: str):
        """The model's predictor. A load runs as a task of its own that callers share and none can cancel.

        A caller that gives up (a readiness probe's or client's time-out cancels its handler) used to cancel
        the await while the loading thread went on; the next probe then started another load. At 1.5 B
        parameters a load takes a minute, so a probe with a 5 s time-out kept several copies loading and
        the replica never became ready (docs/real-shape.md)."""
        load = self._loading.get(model_id)
        if load is None:
            load = asyncio.ensure_future(self.get_model(model_id))
            self._loading[model_id] = load
            load.add_done_callback(lambda _done: self._loading.pop(model_id, None))
        return await asyncio.shield(load)

    async def predict(self, model_id: str, texts: list[str], calibration: str | None, selection: tuple) -> list:
        """Predictions of `texts` (dicts, in order). selection: (target_accuracy, min_confidence), (None, None)
        for a plain request. A bad target is ApiError 422 before any text is scored; a text that fails even
        alone raises its error (the request answers 500)."""
        threshold = await self._selection(model_id, calibration, *selection)
        predictions = await asyncio.gather(*(self._predict_batched((model_id, calibration, t)) for t in texts))
        failed = next((p for p in predictions if isinstance(p, Exception)), None)
        if failed is not None:  # only this request's own text failed: it alone gets the 500
            raise failed
        return [abstain(p, *threshold) for p in predictions] if threshold is not None else predictions

    async def _selection(self, model_id: str, calibration: str | None, target, floor):
        """The request's (threshold, reason); None for a plain request."""
        if target is None and floor is None:
            return None
        predictor = await self._loaded(model_id)
        try:
            return predictor.selection(target, floor, calibration)
        except ConfigError as err:
            raise ApiError(422, "invalid_target", str(err)) from None

    @serve.batch(  # placeholders: __init__ sets the config's values
        max_batch_size=FIELDS["max_batch_size"].default, batch_wait_timeout_s=FIELDS["batch_wait_timeout_s"].default
    )
    async def _predict_batched(self, items: list[tuple[str, str | None, str]]) -> list[dict]:
        """items: (model id, calibration, text) from any number of concurrent requests → predictions in the
        same order; one predictor call per (model, calibration) in the batch."""
        self.batch_sizes[len(items)] += 1
        results: list[dict | None] = [None] * len(items)
        for model_id, calibration in dict.fromkeys((m, c) for m, c, _ in items):
            indices = [i for i, (m, c, _) in enumerate(items) if (m, c) == (model_id, calibration)]
            predictor = await self._loaded(model_id)
            predictions = await isolated_predictions(predictor, [items[i][2] for i in indices], calibration)
            if hasattr(predictions, "token_lengths"):  # a `Predictions`; not after a one-by-one retry
                confidences = [p["confidence"] for p in predictions]
                self._window(model_id, calibration).add(confidences, predictions.token_lengths)
            for i, prediction in zip(indices, predictions, strict=True):
                results[i] = prediction
        return results

    def _window(self, model_id: str, calibration: str | None) -> ShiftWindow:
        key = (model_id, calibration)
        if key not in self.windows:
            block = named(self.metas[model_id], calibration)
            target = self.target_accuracy
            threshold = threshold_for(block, target)[0] if block and target is not None else None
            self.windows[key] = ShiftWindow(block, calibration, self.shift_window, threshold)
        return self.windows[key]

    async def ready(self, model_id: str, wait_s: float) -> bool:
        """Whether the model is loaded, waiting at most `wait_s` for a load (which goes on either way)."""
        try:
            await asyncio.wait_for(self._loaded(model_id), wait_s)
        except TimeoutError:
            return False
        return True

    def shift(self, model_id: str) -> dict:
        """The shift check of this replica's recent rows of the model, with its default calibration."""
        return self._window(model_id, None).stats()

    def stats(self) -> dict:
        return {
            "batches": sum(self.batch_sizes.values()),
            "batch_sizes": {str(k): v for k, v in sorted(self.batch_sizes.items())},
            "max_batch_size_seen": max(self.batch_sizes, default=0),
            "model_loads": dict(self.model_loads),
            "shift": {f"{m}/{c or 'default'}": w.stats() for (m, c), w in self.windows.items()},
        }
