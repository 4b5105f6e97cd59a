"""Shared fixtures, each built once per pytest process (once per xdist worker): the offline tiny Qwen2 and its
tokenizer, model folders, the local S3 server, one local Ray cluster, and one Ray-trained run per strategy; and
how `make test`'s workers share the modules out."""

import logging
import os

import pytest
from helpers import TRAINED, build_model_folder, small_run_updates

log = logging.getLogger(__name__)

# Every process that starts or reaches a Ray cluster runs with token auth (docs/ray-2.60.md).
os.environ.setdefault("RAY_AUTH_MODE", "token")
# The Hub is unreachable here by design: fail fast instead of retrying for ~25 s.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


# `make test` runs two pytest-xdist workers (`--dist loadgroup`, scheduled below). A session fixture is built once
# per worker: each worker that runs a Ray test starts its own session Ray. Work is handed out a module at a time, so
# a module's fixtures are built once; the two-node cluster's modules are one unit. The modules that take minutes
# go first: one started last would run alone at the end while the other worker idles. (Units are named by
# module because xdist's scheduler sees only test ids, and pytest 9's ids no longer take xdist's `@group`.)
SLOW_MODULES_FIRST = [
    "tests/integration/test_tune_ray.py",
    "tests/integration/test_train_ray.py",
    "tests/benchmarks/test_real_shape.py",
    "tests/cluster/test_shared_storage.py",
    "tests/cluster/test_multinode_jobs.py",
    "tests/integration/test_serve_ray.py",
    "tests/integration/test_faults.py",
    "tests/integration/test_evaluate_ray.py",
    "tests/integration/test_storage_s3.py",
    "tests/integration/test_score_ray.py",
    "tests/integration/test_serve_stop.py",
    "tests/integration/test_conformance.py",
    "tests/integration/test_shift_ray.py",
    "tests/cluster/test_local_ray_start.py",
    "tests/unit/test_strategies.py",
    "tests/unit/test_training_loop.py",
]
TWO_NODE_MODULES = {"tests/cluster/test_multinode_jobs.py", "tests/cluster/test_shared_storage.py"}


def module_of(nodeid: str) -> str:
    return nodeid.split("::")[0]


def pytest_xdist_make_scheduler(config, log):  # `log`: xdist's own, the hook's argument
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = module_of(nodeid)
            return "two-node cluster" if module in TWO_NODE_MODULES else module

    config.option.loadscopereorder = False  # keep the collection order below: slow modules first
    return ModuleScheduling(config, log)


def pytest_collection_modifyitems(config, items):
    rank = {module: i for i, module in enumerate(SLOW_MODULES_FIRST)}
    items.sort(key=lambda item: rank.get(module_of(item.nodeid), len(rank)))  # stable: file order otherwise
    for item in items:  # another module on the two-node cluster would start a second one in the other worker
        if "two_node_cluster" in item.fixturenames and module_of(item.nodeid) not in TWO_NODE_MODULES:
            raise pytest.UsageError(f"{item.nodeid} uses two_node_cluster: add its module to TWO_NODE_MODULES")


@pytest.fixture(scope="session")
def tiny_path():
    from sentiment_ray.models.tiny import materialize_tiny

    return str(materialize_tiny(seed=0))


@pytest.fixture(scope="session")
def tokenizer(tiny_path):
    from sentiment_ray.models.loading import load_tokenizer

    return load_tokenizer(tiny_path)


@pytest.fixture(scope="session")
def model_folder(tmp_path_factory, tiny_path, tokenizer):
    return build_model_folder(tmp_path_factory.mktemp("model") / "model", tiny_path, tokenizer)


@pytest.fixture(scope="session")
def classifier_folder(tmp_path_factory, tiny_path, tokenizer):
    return build_model_folder(tmp_path_factory.mktemp("classifier") / "model", tiny_path, tokenizer, "classifier")


@pytest.fixture(scope="session")
def s3():
    """The S3 protocol served locally (tests/s3_local.py); its AWS_* variables are set for this process, and so
    reach every Ray node and CLI process started after it."""
    from s3_local import local_s3

    with local_s3() as variables:
        yield variables


@pytest.fixture(scope="session")
def ray_cluster(s3):
    """The one local Ray of this test run, started after the local S3 so that its workers inherit the AWS_*
    variables. CLI processes the tests start join it through RAY_ADDRESS (`ray_env`), as a user's commands join a
    cluster. With the dashboard: Tune's ASHA frees stopped trials through its State API. 4 logical CPUs on a
    2-core machine: 2 Train workers plus the controller and Ray Data's tasks fit. Workers' output stays in Ray's
    session logs (/tmp/ray/session_latest/logs): with log_to_driver, `ray.shutdown()` at the end of a run once
    hung for good in closing the log subscriber (Ray 2.60), and Serve's access lines flooded the test log."""
    import ray

    from benchmarks.net import free_port

    ray.init(
        num_cpus=4,
        include_dashboard=True,
        dashboard_host="127.0.0.1",
        dashboard_port=free_port(),
        log_to_driver=False,
    )
    yield ray
    shutdown_or_kill(ray)


def shutdown_or_kill(ray, timeout_s: float = 10.0) -> None:
    """`ray.shutdown()`, unless it hangs: on Ray 2.60 it sometimes blocks for good closing the driver's error
    subscriber (a blocking gRPC call) at the end of a long run, which held the whole test run. Then the node's
    processes are killed, and the interpreter's exit does not call the hung shutdown again. A clean shutdown takes
    1-3 s here; every second of `timeout_s` is paid at the end of a hung run."""
    import atexit
    import threading

    from ray._private import worker

    node = worker._global_node
    closing = threading.Thread(target=ray.shutdown, name="ray-shutdown", daemon=True)
    closing.start()
    closing.join(timeout_s)
    if closing.is_alive():
        log.warning("ray.shutdown() still running after %.0f s: killing the session's Ray processes", timeout_s)
        atexit.unregister(worker.shutdown)
        if node is not None:
            node.kill_all_processes(check_alive=False, allow_graceful=False, wait=True)


@pytest.fixture(scope="session")
def ray_env(ray_cluster) -> dict:
    """The environment of a CLI process that joins the session's Ray (its GCS address in RAY_ADDRESS)."""
    return {**os.environ, "RAY_ADDRESS": ray_cluster.get_runtime_context().gcs_address}


@pytest.fixture(scope="session")
def trained_runs(ray_cluster, tmp_path_factory) -> dict:
    """strategy → TrainOutcome of one 2-worker Ray Train run (4 steps on 64 reviews, `small_run`), trained once per
    session. For tests that need a run trained through Ray; `model_folder` and `classifier_folder` (built in
    process, adapters randomised so that they matter) serve tests that only need a model folder. Trained through the
    Python API (`sentiment_ray.train`), which the tests of these runs so check too."""
    import sentiment_ray

    root = tmp_path_factory.mktemp("trained")
    return {
        strategy: sentiment_ray.train(
            None,
            small_run_updates(root / strategy, **{"model.finetune": finetune}),
            [
                f"model.strategy={strategy}"  # `overrides`, as `--set` gives them
            ],
        )
        for strategy, finetune in TRAINED.items()
    }


@pytest.fixture(scope="session")
def calibrated_folder(tmp_path_factory, model_folder):
    """A copy of `model_folder` calibrated by `sentiment-ray calibrate` on a labelled CSV.

    The tiny fixture model has random adapters, so against the corpus' labels no confidence threshold reaches
    any accuracy target. The CSV's labels are the model's own predictions instead, with the least confident
    30% flipped: confident rows are right and unsure ones wrong, so targets between 0.5 and 1 have thresholds
    and selective prediction has something to select.
    """
    import shutil

    from helpers import self_labelled

    from sentiment_ray.cli import main
    from sentiment_ray.data.corpus import load_offline_splits

    root = tmp_path_factory.mktemp("calibrated")
    folder = root / "model"
    shutil.copytree(model_folder, folder)
    texts = load_offline_splits(seed=0, val_size=600, test_size=600)[0]["validation"]["text"].tolist()
    self_labelled(folder, texts, precision="fp32").to_csv(root / "calibration.csv", index=False)
    argv = ["calibrate", "--model-path", str(folder), "--data", str(root / "calibration.csv"), "--device", "cpu"]
    assert main(argv) == 0
    return folder
