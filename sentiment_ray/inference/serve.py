"""Ray Serve deployment: one or more model folders behind POST /predict, with dynamic batching.

    sentiment-ray serve --model-path runs/tiny/model [--model other=runs/x/model] [--port 8000] [--replicas 2]
    serve run jobs/configs/serve.yaml          # or: serve deploy jobs/configs/serve.yaml

Requests pick a model by the `serve_multiplexed_model_id` header or the body's `model` field (default:
`default`, the `--model-path` folder). Models load lazily into a per-replica LRU
(`@serve.multiplexed`). Texts from concurrent requests are batched by `@serve.batch`; /stats shows
the batch sizes this replica ran. /healthz and /readyz are open; every other route needs the token when one is set.
"""

# No `from __future__ import annotations`: FastAPI must see the real request/response classes on the routes.

import asyncio
import collections
import logging
import os

import ray
from fastapi.responses import JSONResponse
from ray import serve

from sentiment_ray.calibration import abstain, named, threshold_for
from sentiment_ray.errors import ConfigError
from sentiment_ray.inference.http_api import (
    TOKEN_ENV,
    ApiError,
    Limits,
    PredictRequest,
    PredictResponse,
    build_app,
    validate_request,
)
from sentiment_ray.inference.promise import promise
from sentiment_ray.inference.serve_config import DEFAULT_MODEL, ServeConfig, serve_config
from sentiment_ray.inference.shift_window import ShiftWindow
from sentiment_ray.models.folder import labels_of
from sentiment_ray.storage import absolute

READY_WAIT_S = 10.0
"""How long GET /readyz waits for a loading model before it answers 503 `loading` (the load goes on)."""

FIELDS = ServeConfig.model_fields
log = logging.getLogger(__name__)


def deployment_options(
    max_batch_size: int,
    max_concurrent_batches: int = 1,
    replicas: int = 1,
    cpus_per_replica: float = 1.0,
    gpus_per_replica: float = 0.0,
) -> dict:
    """Serve options consistent with batching: max_ongoing_requests >= max_batch_size × concurrent batches,
    or batches never fill (Serve's default of 5 would cap every batch at 5). The CPU / GPU reservation is
    what places a replica on a GPU node of a cluster."""
    ongoing = max(2 * max_batch_size * max_concurrent_batches, 64)  # a low cap throttles: the router backs off
    return {
        "num_replicas": replicas,
        "max_ongoing_requests": ongoing,
        "max_queued_requests": 4 * ongoing,
        "health_check_period_s": 10,
        "ray_actor_options": {"num_cpus": cpus_per_replica, "num_gpus": gpus_per_replica},
    }


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


def build_deployment(limits: Limits, max_models_per_replica: int, api_token: str | None = None):
    app = build_app(limits, api_token)

    @serve.deployment
    @serve.ingress(app)
    class SentimentService:
        def __init__(self, config: dict):
            import torch

            from sentiment_ray.models.folder import read_meta

            cfg = ServeConfig.model_validate(config)
            # Ray sets OMP_NUM_THREADS=1 in actors; use the CPUs this replica reserved instead.
            torch.set_num_threads(max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1))))
            # A URI (s3://…) stays one: each replica reads it through its node's cached copy.
            self.models = {name: absolute(path) for name, path in cfg.all_models().items()}
            self.metas = {name: read_meta(path) for name, path in self.models.items()}  # fail fast on bad folders
            self.device, self.precision = cfg.device, cfg.precision
            self.default_selection = (cfg.target_accuracy, cfg.min_confidence)
            self._predict_batched.set_max_batch_size(cfg.max_batch_size)
            self._predict_batched.set_batch_wait_timeout_s(cfg.batch_wait_timeout_s)
            self.batch_sizes: collections.Counter = collections.Counter()
            self.model_loads: collections.Counter = collections.Counter()  # loads started per model id (/stats)
            self._loading: dict[str, asyncio.Future] = {}
            self.ready = False
            self.shift_window, self.windows = cfg.shift_window, {}  # (model id, calibration) -> ShiftWindow

        @serve.multiplexed(max_num_models_per_replica=max_models_per_replica)  # per-replica LRU bound
        async def get_model(self, model_id: str):
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
                target = self.default_selection[0]
                threshold = threshold_for(block, target)[0] if block and target is not None else None
                self.windows[key] = ShiftWindow(block, calibration, self.shift_window, threshold)
            return self.windows[key]

        def _model_id(self, body_model: str | None) -> str:
            model_id = body_model or serve.get_multiplexed_model_id() or DEFAULT_MODEL
            if model_id not in self.models:
                raise ApiError(404, "unknown_model", f"unknown model {model_id!r}; served: {', '.join(self.models)}")
            return model_id

        @app.post("/predict", response_model=PredictResponse, response_model_exclude_unset=True)
        async def predict(self, body: PredictRequest) -> PredictResponse:
            texts = validate_request(body, limits)
            model_id = self._model_id(body.model)
            self._check_calibration(model_id, body.calibration)
            selection = await self._selection(model_id, body)  # a bad target: 422 before any text is scored
            calibration = body.calibration
            predictions = await asyncio.gather(*(self._predict_batched((model_id, calibration, t)) for t in texts))
            failed = next((p for p in predictions if isinstance(p, Exception)), None)
            if failed is not None:  # only this request's own text failed: it alone gets the 500
                raise failed
            if selection is not None:
                predictions = [abstain(p, *selection) for p in predictions]
            return PredictResponse(model=model_id, predictions=predictions)

        async def _selection(self, model_id: str, body: PredictRequest):
            """The request's (threshold, reason), with the deployment's defaults; None for a plain request."""
            target, floor = body.target_accuracy, body.min_confidence
            if target is None and floor is None:  # the deployment's default; a target wins over a floor
                target, floor = self.default_selection
                floor = None if target is not None else floor
            if target is None and floor is None:
                return None
            predictor = await self._loaded(model_id)
            try:
                return predictor.selection(target, floor, body.calibration)
            except ConfigError as err:
                raise ApiError(422, "invalid_target", str(err)) from None

        def _check_calibration(self, model_id: str, name: str | None) -> None:
            if name is not None and len(name) > 64:
                raise ApiError(422, "unknown_calibration", "a calibration name has at most 64 characters")
            try:
                named(self.metas[model_id], name)
            except ConfigError as err:
                raise ApiError(422, "unknown_calibration", str(err)) from None

        @app.get("/healthz")
        async def healthz(self) -> dict:
            return {"status": "ok"}

        @app.get("/readyz")
        async def readyz(self):
            """200 once the default model is loaded (so the first real request is not slow); until then 503
            `loading` after at most READY_WAIT_S, however long the load takes. Open to anyone: no names here."""
            if not self.ready:
                try:
                    await asyncio.wait_for(self._loaded(DEFAULT_MODEL), READY_WAIT_S)
                except TimeoutError:
                    return JSONResponse(status_code=503, content={"status": "loading"})
                self.ready = True
            return {"status": "ready"}

        @app.get("/models")
        async def models(self) -> dict:
            return {"models": list(self.models), "default": DEFAULT_MODEL}

        @app.get("/model")
        async def model(self, name: str = DEFAULT_MODEL) -> dict:
            if name not in self.metas:
                raise ApiError(404, "unknown_model", f"unknown model {name!r}; served: {', '.join(self.models)}")
            meta = self.metas[name]
            keys = (
                "strategy",
                "base_model",
                "finetune",
                "prompt_template",
                "label_words",
                "max_length",
                "metrics",
                "calibration",
                "created_at",
            )
            shown = {k: meta.get(k) for k in keys}
            shown["labels"] = labels_of(meta).to_list()  # the classes, in label_id order
            if shown["calibration"]:
                shown["calibration"] = public_calibration(shown["calibration"], None)
            others = meta.get("calibrations") or {}
            shown["calibrations"] = {k: public_calibration(v, k) for k, v in others.items()}
            shown["shift"] = self._window(name, None).stats()  # this replica's recent rows of this model
            return {"name": name, **shown}  # no paths: they say nothing a client needs

        @app.get("/stats")
        async def stats(self) -> dict:
            return {
                "batches": sum(self.batch_sizes.values()),
                "batch_sizes": {str(k): v for k, v in sorted(self.batch_sizes.items())},
                "max_batch_size_seen": max(self.batch_sizes, default=0),
                "model_loads": dict(self.model_loads),
                "shift": {f"{m}/{c or 'default'}": w.stats() for (m, c), w in self.windows.items()},
            }

    return SentimentService


def public_calibration(block: dict, name: str | None) -> dict:
    """A calibration as `/model` shows it: without the path of its file (it says nothing a client needs; nor do
    the reference summary's bins), with the promise in words."""
    fitted = {k: v for k, v in block["fitted_on"].items() if k != "data"}
    shown = {k: v for k, v in block.items() if k != "reference"} | {"fitted_on": fitted}
    return shown | {"promise": promise(shown, name)}


def build_application(cfg: ServeConfig, api_token: str | None = None):
    """The bound Serve application (what `serve.run` takes). The bearer token defaults to $SENTIMENT_RAY_API_TOKEN."""
    from sentiment_ray.runtime import precheck

    n, cpus, gpus = cfg.replicas, cfg.cpus_per_replica, cfg.gpus_per_replica
    what = f"--replicas {n} × (--cpus-per-replica {cpus:g}, --gpus-per-replica {gpus:g})"
    precheck(what, n * cpus, n * gpus, "lower --replicas or the CPUs / GPUs per replica")
    api_token = api_token if api_token is not None else os.environ.get(TOKEN_ENV)
    deployment = build_deployment(cfg.limits(), cfg.max_models_per_replica, api_token or None)
    options = deployment_options(cfg.max_batch_size, replicas=n, cpus_per_replica=cpus, gpus_per_replica=gpus)
    return deployment.options(**options).bind(cfg.model_dump())


def app_builder(args: ServeConfig):
    """Entry point for `serve run` / `serve deploy` config files (jobs/configs/serve.yaml).

    import_path: sentiment_ray.inference.serve:app_builder. Serve validates the YAML's `args` against the
    annotation: a misspelled or unknown key is refused with its name.
    """
    return build_application(args)


def run_server(
    models: dict[str, str],
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    api_token: str | None = None,
    limits: Limits | None = None,
    **fields,
) -> None:
    """Start Serve on host:port for `models` ({id: folder}, `default` first) with any other ServeConfig fields."""
    others = {k: v for k, v in models.items() if k != DEFAULT_MODEL}
    values = {"model_path": models[DEFAULT_MODEL], "models": others, "host": host, "port": port, **fields}
    run(serve_config({**values, **(limits.model_dump() if limits else {})}, "serve"), api_token)


def run(cfg: ServeConfig, api_token: str | None = None) -> None:
    """Start Serve on cfg.host:cfg.port (127.0.0.1 by default: not reachable from other machines) and deploy."""
    from sentiment_ray.models.folder import prepare_folder_base
    from sentiment_ray.runtime import init_ray

    application = build_application(cfg, api_token)  # checks the replicas fit an embedded Ray, before it starts
    for path in cfg.all_models().values():  # a wrong folder fails before Ray; build a tiny base once
        prepare_folder_base(path)
    init_ray()
    serve.start(http_options={"host": cfg.host, "port": cfg.port})
    serve.run(application, name="sentiment", route_prefix="/")
