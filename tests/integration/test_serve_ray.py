"""Ray Serve on 127.0.0.1: predictions, dynamic batching, every bad-input case, the token, two models."""

import json
import socket
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from helpers import BINARY_FOLDERS, binary_folder
from hostile_requests import all_kinds, build_request, exchange

from benchmarks.load_client import batch_delta
from benchmarks.net import free_port, wait_ready
from benchmarks.serve_uploads import chunked_upload
from sentiment_ray.inference.http_api import Limits
from sentiment_ray.inference.predictor import SentimentPredictor
from sentiment_ray.inference.serve import run_server

TOKEN = "test-token-123"
TEXTS = ["质量很好，物流也快", "太差了，不推荐", "一般般吧。", "非常满意，还会再买"]


@pytest.fixture(scope="module")
def server(ray_cluster, model_folder, classifier_folder, calibrated_folder, tiny_path, tmp_path_factory):
    from ray import serve

    port = free_port()
    legacy = binary_folder("label_scoring", tiny_path, tmp_path_factory.mktemp("legacy"))  # saved before N classes
    models = {"default": model_folder, "cls": classifier_folder, "calibrated": calibrated_folder, "legacy": legacy}
    run_server(
        {name: str(folder) for name, folder in models.items()},
        host="127.0.0.1",
        port=port,
        max_batch_size=16,
        batch_wait_timeout_s=0.05,
        # fp32, not `auto`: on a CPU with AVX512-BF16 `auto` is bf16, and the tests compare against fp32 paths
        precision="fp32",
        limits=Limits(max_texts=8, max_text_chars=500, max_body_bytes=20_000, body_timeout_s=3),
        api_token=TOKEN,
        shift_window=50,  # rows per shift-check window: small, so that a test fills windows in a few requests
    )
    yield f"http://127.0.0.1:{port}"
    serve.shutdown()


def call(url, path, body=None, *, raw=None, token=TOKEN, headers=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url + path, data=data, method="POST" if data is not None else "GET")
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_the_default_model_loads_once_before_the_replica_takes_requests(server, model_folder):
    """A fresh app beside the module's one (route /probe, its own replica). Its replica holds the default model
    once Serve runs it, before any request: Serve routes a model's requests to the replicas that hold it, and a
    replica that loaded on first use stayed cold until its warm peer died. Each probe below hangs up after 50 ms,
    which cancels its handler; none may start another load (at 1.5 B parameters restarted loads held several
    copies). The probes carry no token: /readyz stays open under a route prefix too."""
    from ray import serve

    from sentiment_ray.inference.serve import build_application
    from sentiment_ray.inference.serve_config import serve_config

    cfg = serve_config({"model_path": str(model_folder), "precision": "fp32"}, "probe")
    serve.run(build_application(cfg, api_token=TOKEN), name="probe", route_prefix="/probe")
    try:
        assert call(server, "/probe/stats")[1]["model_loads"] == {"default": 1}  # loaded before any request
        for _ in range(20):
            try:
                urllib.request.urlopen(server + "/probe/readyz", timeout=0.05)
            except (urllib.error.URLError, TimeoutError, ConnectionError):
                pass
        wait_ready(server + "/probe", timeout_s=120)
        assert call(server, "/probe/stats")[1]["model_loads"] == {"default": 1}
    finally:
        serve.delete("probe")


def test_single_and_batch_predictions_equal_the_predictor(server, model_folder):
    expected = SentimentPredictor.from_pretrained(model_folder, precision="fp32").predict_batch(TEXTS)
    status, single = call(server, "/predict", {"text": TEXTS[0]})
    assert status == 200 and single["model"] == "default"
    assert single["predictions"][0]["label"] == expected[0]["label"]
    assert single["predictions"][0]["prob_positive"] == pytest.approx(expected[0]["prob_positive"], abs=1e-4)
    status, batch = call(server, "/predict", {"texts": TEXTS})
    assert status == 200 and [p["label"] for p in batch["predictions"]] == [e["label"] for e in expected]


def test_concurrent_requests_are_batched(server):
    """32 requests of one text each, at once: a batch of more than one text holds texts of several requests."""
    before = call(server, "/stats")[1]
    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(lambda t: call(server, "/predict", {"text": t}), TEXTS * 8))
    assert all(status == 200 for status, _ in results)
    burst = batch_delta(before, call(server, "/stats")[1])  # only this test's batches, not earlier requests'
    assert burst["max_batch"] > 1, burst
    assert burst["batches"] < 32, burst  # fewer batches than requests


@pytest.mark.parametrize(
    ("kwargs", "status", "kind"),
    [
        ({"raw": b'{"text": "unterminated'}, 422, "invalid_request"),
        ({"body": {"text": 5}}, 422, "invalid_request"),
        ({"body": {"texts": "not a list"}}, 422, "invalid_request"),
        ({"body": {"texts": []}}, 422, "invalid_request"),
        ({"body": {}}, 422, "invalid_request"),
        ({"body": {"texts": ["好"] * 9}}, 422, "too_many_texts"),
        ({"body": {"text": "长" * 501}}, 422, "text_too_long"),
        ({"body": {"text": "好", "model": "nope"}}, 404, "unknown_model"),
        ({"body": {"text": "好"}, "headers": {"serve_multiplexed_model_id": "nope"}}, 404, "unknown_model"),
        ({"raw": json.dumps({"texts": ["好" * 490] * 8}).encode()}, 413, "body_too_large"),  # ~23.5 kB > 20 kB
        ({"raw": b'{"text": "\xff\xfe"}'}, 400, "invalid_request"),  # bytes that are not UTF-8
        ({"raw": b'{"text": ' + b"[" * 3000 + b"]" * 3000 + b"}"}, 400, "invalid_request"),  # nested 3,000 deep
        ({"raw": b'{"text": ' + b"9" * 5000 + b"}"}, 400, "invalid_request"),  # a 5,000-digit integer
    ],
)
def test_bad_input_gets_a_4xx_json_error(server, kwargs, status, kind):
    got, body = call(server, "/predict", **kwargs)
    assert got == status and body["error"]["type"] == kind and body["error"]["message"]
    assert call(server, "/predict", {"text": "很好"})[0] == 200  # the replica is still alive


@pytest.mark.parametrize(
    ("path", "body", "status", "kind"), [("/nope", None, 404, "not_found"), ("/healthz", {}, 405, "method_not_allowed")]
)
def test_http_layer_errors_use_the_error_shape(server, path, body, status, kind):
    got, answer = call(server, path, body)
    assert got == status and answer["error"]["type"] == kind and answer["error"]["message"]


def test_token_is_required_except_on_health(server):
    assert call(server, "/predict", {"text": "好"}, token=None)[0] == 401
    assert call(server, "/predict", {"text": "好"}, token="wrong")[0] == 401
    assert call(server, "/model", token=None)[0] == 401
    assert call(server, "/healthz", token=None) == (200, {"status": "ok"})
    assert call(server, "/readyz", token=None)[0] == 200


def test_two_models_are_multiplexed(server, classifier_folder):
    expected = SentimentPredictor.from_pretrained(classifier_folder, precision="fp32").predict_batch(TEXTS)
    by_header = call(server, "/predict", {"texts": TEXTS}, headers={"serve_multiplexed_model_id": "cls"})[1]
    by_body = call(server, "/predict", {"texts": TEXTS, "model": "cls"})[1]
    for response in (by_header, by_body):
        assert response["model"] == "cls"
        assert [p["label"] for p in response["predictions"]] == [e["label"] for e in expected]
    info = call(server, "/model?name=cls")[1]
    assert info["strategy"] == "classifier" and info["base_model"] == "tiny"
    assert call(server, "/model")[1]["strategy"] == "label_scoring"
    assert call(server, "/models") == (
        200,
        {"models": ["default", "cls", "calibrated", "legacy"], "default": "default"},
    )


def test_a_binary_folder_saved_before_n_class_labels_serves_what_it_predicted_then(server):
    """tests/data/binary_folders: the same labels and P(positive) over HTTP, plus `probs` by class name."""
    kept = json.loads((BINARY_FOLDERS / "label_scoring_predictions.json").read_text(encoding="utf-8"))
    status, body = call(server, "/predict", {"texts": kept["texts"], "model": "legacy"})
    assert status == 200 and body["model"] == "legacy"
    for old, new in zip(kept["predictions"], body["predictions"], strict=True):
        assert (new["label"], new["label_id"], new["error"]) == (old["label"], old["label_id"], old["error"])
        if old["error"] is None:  # the kept texts include an empty one, whose row is an error then and now
            assert new["prob_positive"] == pytest.approx(old["prob_positive"], abs=1e-6)
            assert list(new["probs"]) == ["negative", "positive"]
        else:
            assert new["prob_positive"] is None and new["probs"] is None


def test_a_lone_surrogate_fails_no_other_request_in_its_batch(server):
    """300 requests over 64 connections, 5 of them with a lone surrogate ("\\ud800" is valid JSON): every good
    request gets 200, and the 5 get a per-text error, as the predictor reports it."""
    bad = {17, 80, 151, 222, 290}
    bodies = [{"text": "好\ud800评"} if i in bad else {"text": f"{TEXTS[i % 4]}{i}"} for i in range(300)]
    with ThreadPoolExecutor(64) as pool:
        results = list(pool.map(lambda body: call(server, "/predict", body), bodies))
    assert [i for i, (status, _) in enumerate(results) if status != 200] == []
    errors = {i: r["predictions"][0]["error"] for i, (_, r) in enumerate(results) if r["predictions"][0]["error"]}
    assert sorted(errors) == sorted(bad)
    assert all("lone surrogate" in message for message in errors.values())


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_json_sent_as_a_form_as_curl_d_does_is_told_to_declare_json(server):
    body = {"text": "很好"}
    status, answer = call(server, "/predict", body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415 and answer["error"]["type"] == "unsupported_media_type"
    assert "Content-Type: application/json" in answer["error"]["message"]
    assert call(server, "/predict", body)[0] == 200


@pytest.mark.parametrize("token", [TOKEN, None], ids=["with-token", "without-token"])
def test_hostile_requests_never_get_a_5xx_and_4xx_bodies_have_the_error_shape(server, token):
    """The kept list in hostile_requests.py (124 kinds), each sent with and without the bearer token."""
    problems, answered = [], {}
    for kind in all_kinds():
        status, body = exchange(port_of(server), build_request(kind, token), head_only=kind.method == "HEAD")
        answered[kind.name] = status
        if status is not None and status >= 500:
            problems.append(f"{kind.name}: {status} {body[:200]!r}")
        elif status is None and not kind.http_layer:
            problems.append(f"{kind.name}: connection closed without an answer")
        elif status and status >= 400 and not kind.http_layer and kind.method != "HEAD":
            try:
                error = json.loads(body)["error"]
                assert error["type"] and error["message"]
            except (ValueError, KeyError, TypeError, AssertionError):
                problems.append(f"{kind.name}: {status} body not in the error shape: {body[:200]!r}")
        needs_401 = token is None and not kind.carries_the_token and kind.path not in ("/healthz",)
        if needs_401 and not kind.http_layer and status != 401:
            problems.append(f"{kind.name}: {status} without the token (401 expected)")
    assert problems == [], "\n".join(problems)
    if token:  # a few answers pinned, so that "no 5xx" cannot pass by refusing everything
        assert answered["valid single text"] == answered["lone high surrogate"] == 200
        assert answered["chunked body under the limit"] == answered["chunked body over the limit"] == 411
        assert answered["declared Content-Length over the limit"] == answered["body over the byte limit"] == 413
        assert answered["model path traversal"] == answered["model header traversal"] == 404
        assert answered["form-urlencoded"] == answered["text/plain content type"] == 415
        assert answered["gzip body"] == answered["invalid UTF-8"] == 400


@pytest.mark.parametrize(("framing", "status"), [("chunked", "411"), ("content-length", "413")])
def test_an_oversized_upload_is_refused_from_its_headers_while_it_is_still_arriving(server, framing, status):
    """Sent as fast as loopback allows, a 250 MB upload is answered long before it is all sent: nothing waits
    for (or buffers) the whole body. Memory under 4 such uploads: benchmarks/serve_uploads.py."""
    token = f"Authorization: Bearer {TOKEN}\r\n".encode()
    result = chunked_upload(port_of(server), 250_000_000, framing == "content-length", extra_headers=token)
    assert result["status"] == status, result
    assert result["sent_bytes"] < 250_000_000


def test_a_slow_body_gets_408_and_its_connection_is_closed(server):
    """A client that declares 100 bytes and sends 10 is answered 408 after body_timeout_s (3 s here)."""
    request = f"POST /predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 100\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port_of(server)), timeout=30) as sock:
        sock.sendall(request.encode() + b'{"text": "')
        answer = b""
        while chunk := sock.recv(4096):  # returns b"" once the server closes the connection
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["type"] == "request_timeout"


def test_no_paths_or_process_ids_leak(server, model_folder):
    model, stats = call(server, "/model")[1], call(server, "/stats")[1]
    assert str(model_folder) not in json.dumps(model) and "path" not in model
    assert not any("pid" in key for key in stats), stats
    assert call(server, "/readyz", token=None) == (200, {"status": "ready"})  # no model names to anyone
    assert call(server, "/models", token=None)[0] == 401


def selective_texts() -> list[str]:
    from sentiment_ray.data.corpus import load_offline_splits

    texts = load_offline_splits(seed=0, val_size=400, test_size=400)[0]["test"]["text"].tolist()
    return [t for t in texts if len(t) <= 500][:200]  # the fixture's limit: 500 characters per text


def test_predict_predict_batch_score_and_serve_give_the_same_abstained_flags(
    server, calibrated_folder, tmp_path, capsys
):
    import pandas as pd

    from sentiment_ray.cli import main
    from sentiment_ray.inference.batch import ScoreOptions, read_output, run_scoring

    texts = selective_texts()
    predictor = SentimentPredictor.from_pretrained(str(calibrated_folder), device="cpu", precision="fp32")
    assert predictor.meta["calibration"]["fitted_on"]["part"] == "whole file"
    median = sorted(p["confidence"] for p in predictor.predict_batch(texts))[100]  # splits the rows about in half
    for selective in ({"min_confidence": median}, {"target_accuracy": reachable_target(predictor.meta)}):
        in_process = [p["abstained"] for p in predictor.predict_batch(texts, **selective)]
        assert 0 < sum(in_process) < len(texts), selective  # some kept, some abstained: the flags say something
        flag = "--min-confidence" if "min_confidence" in selective else "--target-accuracy"
        value = str(next(iter(selective.values())))
        capsys.readouterr()
        argv = ["predict", "--model-path", str(calibrated_folder), "--precision", "fp32", flag, value]
        assert main([*argv, *(x for t in texts for x in ("--text", t))]) == 0
        from_cli = [json.loads(line)["abstained"] for line in capsys.readouterr().out.splitlines()]
        source = tmp_path / f"texts-{flag}.csv"
        pd.DataFrame({"text": texts}).to_csv(source, index=False)
        out = tmp_path / f"scored-{flag}"
        summary = run_scoring(
            ScoreOptions(str(calibrated_folder), [str(source)], str(out), precision="fp32", **selective)
        )
        from_score = [bool(v) for v in read_output(out)["abstained"]]
        from_serve = []
        for start in range(0, len(texts), 8):  # the fixture's limit: 8 texts per request
            status, body = call(
                server, "/predict", {"texts": texts[start : start + 8], "model": "calibrated", **selective}
            )
            assert status == 200, body
            from_serve += [p["abstained"] for p in body["predictions"]]
        assert from_cli == in_process and from_score == in_process and from_serve == in_process, selective
        assert summary["selection"]["kept"] == in_process.count(False)


def reachable_target(meta: dict) -> float:
    """A target accuracy that some threshold of the calibration table reaches, so that the flags split."""
    bounds = [r["accuracy_lower_bound"] for r in meta["calibration"]["thresholds"] if 0.3 < r["coverage"] < 0.7]
    return float(np.floor(max(bounds) * 1e4) / 1e4)  # reached by a threshold that keeps 30-70% of the rows


@pytest.mark.parametrize("target", [0.5, 1.2, "abc", -1])
def test_a_bad_target_gets_a_422_in_the_documented_shape(server, target):
    status, body = call(server, "/predict", {"text": "很好", "model": "calibrated", "target_accuracy": target})
    assert status == 422 and set(body["error"]) == {"type", "message"}, body
    assert "target_accuracy" in body["error"]["message"]


def test_a_plain_request_has_no_selective_fields_and_model_shows_the_calibration(server):
    status, body = call(server, "/predict", {"text": "很好", "model": "calibrated"})
    (answer,) = body["predictions"]
    assert status == 200 and set(answer) == {"label", "label_id", "confidence", "probs", "prob_positive", "error"}
    assert answer["probs"] == {"negative": 1 - answer["prob_positive"], "positive": answer["prob_positive"]}
    status, info = call(server, "/model?name=calibrated")
    assert status == 200 and info["calibration"]["temperature"] > 0 and info["calibration"]["thresholds"]
    assert [c["name"] for c in info["labels"]] == ["negative", "positive"]  # the classes, in label_id order
    fitted = info["calibration"]["fitted_on"]
    assert fitted["data"] == "calibration.csv" and fitted["rows"] > 500  # by name, not the calibrating machine's path


def test_each_window_of_rows_is_checked_against_the_calibration_rows_and_stats_count_the_shifted_ones(server):
    """The `calibrated` model was calibrated on reviews of the offline corpus; 104 of its long reviews fill at
    least two windows of 50 rows (the first may hold earlier requests' rows), and the last one is all long."""
    from sentiment_ray.data.corpus import load_offline_splits

    texts = load_offline_splits(seed=0, val_size=400, test_size=400)[0]["train"]["text"]
    long = [t for t in texts.tolist() if 150 <= len(t) <= 500][:104]
    before = call(server, "/stats")[1]["shift"].get("calibrated/default", {"windows_shifted": 0})
    for start in range(0, len(long), 8):
        status, body = call(server, "/predict", {"texts": long[start : start + 8], "model": "calibrated"})
        assert status == 200, body
    after = call(server, "/stats")[1]["shift"]["calibrated/default"]
    assert after["window_rows"] == 50 and after["windows_shifted"] > before["windows_shifted"], after
    assert after["last"]["shifted"] and "length_tokens" in after["last"]["shifted_tests"], after["last"]
    info = call(server, "/model?name=calibrated")[1]
    promised = info["calibration"]["promise"]
    assert info["shift"]["last"]["shifted"] and "600 labelled rows of calibration.csv (whole file)" in promised
    assert "reference" not in info["calibration"]  # the summary's bins say nothing a client needs
    status, body = call(server, "/predict", {"text": "很好", "model": "calibrated", "calibration": "nope"})
    assert (
        status == 422
        and body["error"]["type"] == "unknown_calibration"
        and "holds: default" in body["error"]["message"]
    )
