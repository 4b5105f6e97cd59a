"""The HTTP API (FastAPI) served by Ray Serve: request models, auth, body limit, error bodies.

Kept apart from the Ray Serve deployment (`sentiment_ray.serve`) so that the API contract reads on
its own: every bad request gets a 4xx with a JSON body `{"error": {"type", "message"}}`.
"""

from __future__ import annotations

import hmac
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
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
    """Request body size."""


class PredictRequest(BaseModel):
    text: str | None = Field(default=None, description="one review")
    texts: list[str] | None = Field(default=None, description="several reviews (order is kept)")
    model: str | None = Field(default=None, description="model id; or the `serve_multiplexed_model_id` header")


class Prediction(BaseModel):
    label: str | None
    label_id: int | None
    confidence: float | None
    prob_positive: float | None
    error: str | None


class PredictResponse(BaseModel):
    model: str
    predictions: list[Prediction]


class ApiError(Exception):
    def __init__(self, status: int, kind: str, message: str):
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


def error_response(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"type": kind, "message": message}})


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


def build_app(limits: Limits, api_token: str | None = None) -> FastAPI:
    """The FastAPI app with auth + body-size middleware and JSON error handlers (routes come from the deployment).

    `api_token` is read from SENTIMENT_RAY_API_TOKEN by whoever builds the application (the driver), so that
    replicas on other nodes enforce it without needing the variable in their own environment.
    """
    app = FastAPI(title="sentiment-ray", description="Chinese review sentiment (Qwen, label scoring / classifier)")

    @app.middleware("http")
    async def guard(request: Request, call_next):
        token = api_token
        if token and request.url.path not in OPEN_PATHS:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return error_response(401, "unauthorized", f"missing or wrong bearer token (see {TOKEN_ENV})")
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limits.max_body_bytes:
            return error_response(
                413, "body_too_large", f"request body is {declared} bytes; the limit is {limits.max_body_bytes}"
            )
        body = await request.body()  # also catches chunked bodies without a Content-Length
        if len(body) > limits.max_body_bytes:
            return error_response(413, "body_too_large", f"request body exceeds {limits.max_body_bytes} bytes")
        try:
            return await call_next(request)
        except Exception as err:  # never a plain-text 500, never a traceback per request
            log.error("%s %s failed: %s: %s", request.method, request.url.path, type(err).__name__, err)
            return error_response(500, "internal", "the server could not handle this request; see the server log")

    @app.exception_handler(ApiError)
    async def api_error(request: Request, err: ApiError):
        return error_response(err.status, err.kind, err.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException):  # 404, 405, a body FastAPI cannot parse
        kind = HTTP_ERROR_KINDS.get(err.status_code, "invalid_request" if err.status_code < 500 else "internal")
        return error_response(err.status_code, kind, str(err.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError):
        first = err.errors()[0] if err.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        return error_response(422, "invalid_request", f"{where}: {first.get('msg', 'invalid request')}")

    return app
