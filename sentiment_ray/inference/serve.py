"""Ray Serve application: one or more model folders behind POST /predict, with dynamic batching.

    sentiment-ray serve --model-path runs/tiny/model [--model other=runs/x/model] [--port 8000] [--replicas 2]
    serve run jobs/configs/serve.yaml          # or: serve deploy jobs/configs/serve.yaml

Two deployments: `SentimentAPI`, the HTTP front (auth, limits, validation, error bodies; no model), and
`SentimentModel` (sentiment_ray/inference/serve_model.py), which holds the predictors. The front calls the model
through a deployment handle and sends a request whose model replica died to a surviving one. Requests pick a
model by the `serve_multiplexed_model_id` header or the body's `model` field (default: `default`, the
`--model-path` folder). A model replica loads the default model before it takes requests, the others on
first use into a per-replica LRU; texts from concurrent requests are batched;
/stats shows the batch sizes a model replica ran. /healthz and /readyz are open; every other route needs the
token when one is set.
"""

# No `from __future__ import annotations`: FastAPI must see the real request/response classes on the routes.

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import PurePosixPath

from fastapi.responses import JSONResponse
from ray import serve
from ray.exceptions import ActorUnavailableError, RayActorError, RayTaskError

from sentiment_ray.calibration import named
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
from sentiment_ray.inference.serve_model import SentimentModel
from sentiment_ray.location import Location
from sentiment_ray.models.folder import labels_of

READY_WAIT_S = 10.0
"""How long GET /readyz waits for a loading model before it answers 503 `loading` (the load goes on)."""
MODEL_ATTEMPTS = 3
"""Tries of a call to the model deployment whose replica dies under it (SIGKILL, out of memory, a lost node):
a prediction is idempotent, so the call goes to a surviving replica. Serve's router drops a replica that died
under a call, so each retry goes elsewhere; after the last try the client gets 503 `unavailable`."""
RETRY_PAUSE_S = 0.2
"""Pause before a retry: a replica that Serve restarts needs a moment; the surviving ones need none."""
META_KEYS = (
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
"""What GET /model shows of a folder's meta.json (no paths: they say nothing a client needs)."""
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


def replica_died(err: Exception) -> bool:
    """Whether a model call failed because its replica went away (not because of the request)."""
    cause = err.cause if isinstance(err, RayTaskError) else err
    return isinstance(cause, RayActorError | ActorUnavailableError)


async def call_model(handle, method: str, *args, model_id: str | None = None):
    """`handle.<method>.remote(*args)`, on another replica when the one it ran on died (MODEL_ATTEMPTS tries).

    ApiError raised by the model replica comes back as itself; anything else it raises stays an error (500).
    """
    options = {"multiplexed_model_id": model_id} if model_id else {}
    for attempt in range(1, MODEL_ATTEMPTS + 1):
        try:
            return await getattr(handle.options(**options), method).remote(*args)
        except Exception as err:
            if isinstance(err, RayTaskError) and isinstance(err.cause, ApiError):
                raise err.cause from None
            if not replica_died(err):
                raise
            log.warning("%s: the model replica died under the call (try %d of %d)", method, attempt, MODEL_ATTEMPTS)
            if attempt < MODEL_ATTEMPTS:
                await asyncio.sleep(RETRY_PAUSE_S)
    raise ApiError(503, "unavailable", f"no model replica answered in {MODEL_ATTEMPTS} tries; try again shortly")


@serve.deployment
@serve.ingress()
class SentimentAPI:
    """The HTTP front: every route, the request guard, and validation; predictions come from `SentimentModel`."""

    def __init__(self, config: dict, model, api_token: str | None = None):
        from sentiment_ray.models.folder import read_meta

        cfg = ServeConfig.model_validate(config)
        self.limits, self.api_token, self.model = cfg.limits(), api_token, model
        self.metas = {name: read_meta(Location.of(path)) for name, path in cfg.all_models().items()}
        target, floor = cfg.target_accuracy, cfg.min_confidence
        self.default_selection = (target, None if target is not None else floor)  # a target wins over a floor
        self.ready = False

    def __serve_build_asgi_app__(self):
        app = build_app(self.limits, self.api_token)
        app.post("/predict", response_model=PredictResponse, response_model_exclude_unset=True)(self.predict)
        for path, route in (("/healthz", self.healthz), ("/readyz", self.readyz), ("/models", self.models)):
            app.get(path)(route)
        app.get("/model")(self.model_info)
        app.get("/stats")(self.stats)
        return app

    async def predict(self, body: PredictRequest) -> PredictResponse:
        texts = validate_request(body, self.limits)
        model_id = self._model_id(body.model)
        self._check_calibration(model_id, body.calibration)
        selection = (body.target_accuracy, body.min_confidence)
        if selection == (None, None):  # the deployment's default
            selection = self.default_selection
        args = (model_id, texts, body.calibration, selection)
        predictions = await call_model(self.model, "predict", *args, model_id=model_id)
        return PredictResponse(model=model_id, predictions=predictions)

    def _model_id(self, body_model: str | None) -> str:
        model_id = body_model or serve.get_multiplexed_model_id() or DEFAULT_MODEL
        if model_id not in self.metas:
            raise ApiError(404, "unknown_model", f"unknown model {model_id!r}; served: {', '.join(self.metas)}")
        return model_id

    def _check_calibration(self, model_id: str, name: str | None) -> None:
        if name is not None and len(name) > 64:
            raise ApiError(422, "unknown_calibration", "a calibration name has at most 64 characters")
        try:
            named(self.metas[model_id], name)
        except ConfigError as err:
            raise ApiError(422, "unknown_calibration", str(err)) from None

    async def healthz(self) -> dict:
        return {"status": "ok"}

    async def readyz(self):
        """200 once a model replica runs with the default model loaded (so the first real request is not slow);
        until then 503 `loading` after at most READY_WAIT_S, however long the load takes. A model replica loads the
        default model before Serve routes to it, so the call waits in Serve's router while none runs yet. Open to
        anyone: no names here."""
        if not self.ready:
            call = call_model(self.model, "ready", DEFAULT_MODEL, READY_WAIT_S, model_id=DEFAULT_MODEL)
            try:
                self.ready = await asyncio.wait_for(call, READY_WAIT_S)
            except TimeoutError:
                self.ready = False
            if not self.ready:
                return JSONResponse(status_code=503, content={"status": "loading"})
        return {"status": "ready"}

    async def models(self) -> dict:
        return {"models": list(self.metas), "default": DEFAULT_MODEL}

    async def model_info(self, name: str = DEFAULT_MODEL) -> dict:
        if name not in self.metas:
            raise ApiError(404, "unknown_model", f"unknown model {name!r}; served: {', '.join(self.metas)}")
        meta = self.metas[name]
        shown = {k: meta.get(k) for k in META_KEYS}
        shown["labels"] = labels_of(meta).to_list()  # the classes, in label_id order
        if shown["calibration"]:
            shown["calibration"] = public_calibration(shown["calibration"], None)
        others = meta.get("calibrations") or {}
        shown["calibrations"] = {k: public_calibration(v, k) for k, v in others.items()}
        shown["shift"] = await call_model(self.model, "shift", name)  # one model replica's recent rows
        return {"name": name, **shown}

    async def stats(self) -> dict:
        """One model replica's counters (the one Serve's router picks)."""
        return await call_model(self.model, "stats")


def public_calibration(block: dict, name: str | None) -> dict:
    """A calibration as `/model` shows it: its data by name (a file's basename, not the path on the machine that
    calibrated; the reference summary's bins left out), with the promise in words."""
    fitted = dict(block["fitted_on"])
    if fitted.get("data"):
        fitted["data"] = PurePosixPath(str(fitted["data"]).replace("\\", "/")).name or fitted["data"]
    shown = {k: v for k, v in block.items() if k != "reference"} | {"fitted_on": fitted}
    return shown | {"promise": promise(shown, name)}


def build_application(cfg: ServeConfig, api_token: str | None = None):
    """The bound Serve application (what `serve.run` takes). The bearer token defaults to $SENTIMENT_RAY_API_TOKEN."""
    from sentiment_ray.runtime import precheck

    n, cpus, gpus = cfg.replicas, cfg.cpus_per_replica, cfg.gpus_per_replica
    what = f"--replicas {n} × (--cpus-per-replica {cpus:g}, --gpus-per-replica {gpus:g})"
    precheck(what, n * cpus, n * gpus, "lower --replicas or the CPUs / GPUs per replica")
    api_token = api_token if api_token is not None else os.environ.get(TOKEN_ENV)
    options = deployment_options(cfg.max_batch_size, replicas=n, cpus_per_replica=cpus, gpus_per_replica=gpus)
    model = SentimentModel.options(**options).bind(cfg.model_dump())
    # The front holds no model: no CPU reserved (it parses JSON and waits), as many replicas as the model has.
    front = {**options, "ray_actor_options": {"num_cpus": 0}}
    return SentimentAPI.options(**front).bind(cfg.model_dump(), model, api_token or None)


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


def run(cfg: ServeConfig, api_token: str | None = None, on_ray_connected: Callable[[], None] | None = None) -> None:
    """Start Serve on cfg.host:cfg.port (127.0.0.1 by default: not reachable from other machines) and deploy.

    `on_ray_connected` runs once Ray is up, before Serve starts (`serve` takes back its signal handlers there)."""
    from sentiment_ray.models.folder import prepare_folder_base
    from sentiment_ray.runtime import init_ray

    application = build_application(cfg, api_token)  # checks the replicas fit an embedded Ray, before it starts
    for path in cfg.all_models().values():  # a wrong folder fails before Ray; build a tiny base once
        prepare_folder_base(path)
    init_ray()
    if on_ray_connected is not None:
        on_ray_connected()
    serve.start(http_options={"host": cfg.host, "port": cfg.port})
    serve.run(application, name="sentiment", route_prefix="/")
