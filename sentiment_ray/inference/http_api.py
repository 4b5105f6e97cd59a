"""The HTTP API (FastAPI) served by Ray Serve: request models, auth, body limit, error bodies.

Kept apart from the Ray Serve deployment (`sentiment_ray.inference.serve`) so that the API contract reads on
its own: every bad request gets a 4xx with a JSON body `{"error": {"type", "message"}}`.
"""

from __future__ import annotations

import asyncio
import hmac
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException

TOKEN_ENV = "SENTIMENT_RAY_API_TOKEN"
"""When set, every route but /healthz and /readyz needs `Authorization: Bearer <token>`."""
OPEN_PATHS = {"/healthz", "/readyz", "/-/healthz"}
log = logging.getLogger(__name__)
HTTP_ERROR_KINDS = {404: "not_found", 405: "method_not_allowed"}


class Limits(BaseModel):
    max_texts: int = 256
    """Texts per request."""
    max_text_chars: int = 20_000
    """Characters per text."""
    max_body_bytes: int = 2_000_000
    """Request body size, checked while the body arrives: a larger body is refused without being buffered."""
    body_timeout_s: float = 15.0
    """Seconds a client may take to send its whole body; a slower one gets 408 and its connection is closed."""


class PredictRequest(BaseModel):
    text: str | None = Field(default=None, description="one review")
    texts: list[str] | None = Field(default=None, description="several reviews (order is kept)")
    model: str | None = Field(default=None, description="model id; or the `serve_multiplexed_model_id` header")
    target_accuracy: float | None = Field(
        default=None, description="abstain below the calibrated threshold whose accuracy lower bound reaches this"
    )
    min_confidence: float | None = Field(default=None, description="abstain below this calibrated confidence")
    calibration: str | None = Field(
        default=None, description="a calibration stored with `calibrate --as NAME`; none: the folder's own"
    )


class Prediction(BaseModel):
    label: str | None
    label_id: int | None
    confidence: float | None
    probs: dict[str, float] | None = None  # class name → probability; None when error
    prob_positive: float | None = None  # only where the classes are binary sentiment (left out otherwise)
    error: str | None
    # Only in answers to a selective request (target_accuracy / min_confidence): see the predictor's contract.
    abstained: bool | None = None
    threshold: float | None = None
    reason: str | None = None


class PredictResponse(BaseModel):
    model: str
    predictions: list[Prediction]


class ApiError(Exception):
    def __init__(self, status: int, kind: str, message: str):
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message

    def __reduce__(self):  # crosses process boundaries (model replica → HTTP front) with all three fields
        return ApiError, (self.status, self.kind, self.message)


def error_response(status: int, kind: str, message: str, close: bool = False) -> JSONResponse:
    """The documented error body. `close` asks the HTTP server to drop the connection after the answer (a body
    that was refused half-read must not keep the connection, and the client's upload, going)."""
    headers = {"connection": "close"} if close else None
    return JSONResponse(status_code=status, content={"error": {"type": kind, "message": message}}, headers=headers)


def validate_request(body: PredictRequest, limits: Limits) -> list[str]:
    """The texts of a request, or ApiError(422) naming what is wrong."""
    if (body.text is None) == (body.texts is None):
        raise ApiError(422, "invalid_request", 'send exactly one of "text" or "texts"')
    texts = [body.text] if body.text is not None else body.texts
    if not texts:
        raise ApiError(422, "invalid_request", '"texts" is empty: send at least one text')
    if len(texts) > limits.max_texts:
        raise ApiError(422, "too_many_texts", f'"texts" has {len(texts)} items; the limit is {limits.max_texts}')
    for i, text in enumerate(texts):
        if len(text) > limits.max_text_chars:
            where = f'"texts"[{i}]' if body.texts is not None else '"text"'
            raise ApiError(
                422, "text_too_long", f"{where} has {len(text)} characters; the limit is {limits.max_text_chars}"
            )
    return texts


async def read_body(receive, limits: Limits) -> bytes:
    """The request body, read chunk by chunk under the size and time limits (ApiError 413 / 408 / 400)."""
    try:
        return await asyncio.wait_for(_read_chunks(receive, limits.max_body_bytes), limits.body_timeout_s)
    except asyncio.TimeoutError:  # TimeoutError itself from Python 3.11 on
        raise ApiError(408, "request_timeout", f"the body did not arrive within {limits.body_timeout_s:g} s") from None


async def _read_chunks(receive, max_bytes: int) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ApiError(400, "invalid_request", "the client went away before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise ApiError(413, "body_too_large", f"request body exceeds {max_bytes} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class RequestGuard:
    """Pure ASGI middleware in front of every route: the bearer token, the body under its limits, and no
    exception ever reaching the HTTP layer as a plain-text 500.

    A body must declare its Content-Length, and one over `max_body_bytes` is refused from the headers, before
    any of it is read. Chunked bodies are refused (411) for a measured reason: Ray Serve's proxy reads a body as
    fast as the client sends it and hands the replica everything queued at each read, so reading even the first
    bytes of a chunked 250 MB upload pulled 30+ MB into the replica (results/bench/serve_uploads.md). The body is
    then read here, under the size and time limits, and replayed to the app.
    """

    def __init__(self, app, limits: Limits, api_token: str | None):
        self.app, self.limits, self.api_token = app, limits, api_token

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        try:
            self.check_headers(scope)
            body = await read_body(receive, self.limits)
        except ApiError as err:
            # refused before its body was read whole: the rest may still be on its way, so drop the connection
            return await error_response(err.status, err.kind, err.message, close=True)(scope, receive, send)
        await self.call_app(scope, replay(body, receive), send)

    def check_headers(self, scope) -> None:
        headers = Headers(scope=scope)
        if self.api_token and route_path(scope) not in OPEN_PATHS:
            given = headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.api_token}".encode()):
                raise ApiError(401, "unauthorized", f"missing or wrong bearer token (see {TOKEN_ENV})")
        if "transfer-encoding" in headers:  # chunked: see `RequestGuard`
            raise ApiError(411, "length_required", "send the body with a Content-Length; chunked bodies are refused")
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.limits.max_body_bytes:
            raise ApiError(
                413, "body_too_large", f"request body is {declared} bytes; the limit is {self.limits.max_body_bytes}"
            )

    async def call_app(self, scope, receive, send) -> None:
        started = False

        async def tracking_send(message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as err:  # never a plain-text 500, never a traceback per request
            log.error("%s %s failed: %s: %s", scope["method"], scope["path"], type(err).__name__, err)
            if not started:
                message = "the server could not handle this request; see the server log"
                await error_response(500, "internal", message)(scope, receive, send)


def route_path(scope) -> str:
    """The path as the app's routes see it: without the prefix an app deployed under a route prefix gets (ASGI's
    `root_path`), so /healthz and /readyz stay open under `route_prefix: /sentiment` too."""
    path, root = scope["path"], scope.get("root_path", "").rstrip("/")
    if root and path.startswith(root):
        return path[len(root) :] or "/"
    return path


def replay(body: bytes, receive):
    """An ASGI receive that hands the app the body already read, then defers to the real one (disconnects)."""
    sent = False

    async def receive_again():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return receive_again


def build_app(limits: Limits, api_token: str | None = None) -> FastAPI:
    """The FastAPI app with the request guard and JSON error handlers (routes come from the deployment).

    `api_token` is read from SENTIMENT_RAY_API_TOKEN by whoever builds the application (the driver), so that
    replicas on other nodes enforce it without needing the variable in their own environment.
    """
    app = FastAPI(title="sentiment-ray", description="Chinese review sentiment (Qwen, label scoring / classifier)")

    app.add_middleware(RequestGuard, limits=limits, api_token=api_token)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, err: ApiError):
        return error_response(err.status, err.kind, err.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException):  # 404, 405, a body FastAPI cannot parse
        kind = HTTP_ERROR_KINDS.get(err.status_code, "invalid_request" if err.status_code < 500 else "internal")
        return error_response(err.status_code, kind, str(err.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError):
        declared = request.headers.get("content-type", "")
        if declared and "json" not in declared.split(";")[0]:  # e.g. `curl -d` sends a form type; FastAPI ignores it
            message = f"send the body as JSON with Content-Type: application/json (got Content-Type: {declared})"
            return error_response(415, "unsupported_media_type", message)
        first = err.errors()[0] if err.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        return error_response(422, "invalid_request", f"{where}: {first.get('msg', 'invalid request')}")

    return app
