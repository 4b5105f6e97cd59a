"""cluster.yaml (the Ray cluster launcher config) is one Ray 2.60 accepts, and it keeps its promises: a CPU head and
autoscaled GPU workers, token auth on every node and every `ray start`, the dashboard on the head's loopback only,
nothing but SSH open to the internet, and the project installed from its file mount.

Each check is a small function returning a list of problems; the negative tests break a copy of the config and show
that the matching check reports it.
"""

import copy
import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).parents[2]
CLUSTER_YAML = ROOT / "cluster.yaml"
PUBLIC_CIDRS = {"0.0.0.0/0", "::/0"}


def load_cluster_config(path: Path = CLUSTER_YAML) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def ray_schema() -> dict:
    import ray.autoscaler

    with open(os.path.join(os.path.dirname(ray.autoscaler.__file__), "ray-schema.json")) as f:
        return json.load(f)


def schema_problems(config: dict) -> list[str]:
    """Ray's shipped draft-07 schema (the one `ray up` applies; unknown keys are rejected)."""
    validator = jsonschema.Draft7Validator(ray_schema())
    return [f"{'/'.join(map(str, e.path)) or '<top>'}: {e.message}" for e in validator.iter_errors(config)]


def ray_validation_problems(config: dict) -> list[str]:
    """What `ray up` does before touching the cloud: fill in the provider's defaults, then validate."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    try:
        validate_config(prepare_config(copy.deepcopy(config)))
    except Exception as err:  # jsonschema.ValidationError, ValueError, KeyError, ...
        return [f"{type(err).__name__}: {err}"]
    return []


def first_line_problems(text: str) -> list[str]:
    first = text.splitlines()[0] if text else ""
    return [] if first.strip() == "# ray up cluster.yaml" else [f"first line is {first!r}"]


def node_types(config: dict) -> dict:
    return config.get("available_node_types", {})


def head_type(config: dict) -> dict:
    return node_types(config).get(config.get("head_node_type"), {})


def gpu_worker_problems(config: dict) -> list[str]:
    """At least one worker type with GPU >= 1 and sane min_workers <= max_workers <= the global max_workers."""
    workers = {name: t for name, t in node_types(config).items() if name != config.get("head_node_type")}
    gpu = {name: t for name, t in workers.items() if t.get("resources", {}).get("GPU", 0) >= 1}
    if not gpu:
        return ["no worker node type has resources GPU >= 1"]
    problems = []
    for name, t in gpu.items():
        low, high = t.get("min_workers"), t.get("max_workers")
        if not isinstance(low, int) or not isinstance(high, int):
            problems.append(f"{name}: min_workers / max_workers must both be set")
        elif not 0 <= low <= high <= config.get("max_workers", -1):
            problems.append(f"{name}: need 0 <= min_workers {low} <= max_workers {high} <= global max_workers")
    if "idle_timeout_minutes" not in config:
        problems.append("idle_timeout_minutes is not set")
    return problems


def head_problems(config: dict) -> list[str]:
    """The head advertises GPU 0, so Ray Train's GPU workers can only land on worker nodes."""
    head = head_type(config)
    if not head:
        return [f"head_node_type {config.get('head_node_type')!r} is not an available node type"]
    gpus = head.get("resources", {}).get("GPU")
    return [] if gpus == 0 else [f"head resources GPU is {gpus!r}, not 0"]


def ssh_home(config: dict) -> str:
    return f"/home/{config.get('auth', {}).get('ssh_user', 'ubuntu')}"


def token_mount_problems(config: dict) -> list[str]:
    """~/.ray/auth_token (from `ray get-auth-token --generate`) goes to ~/.ray/auth_token on every node."""
    mounts = config.get("file_mounts", {})
    remote = f"{ssh_home(config)}/.ray/auth_token"
    if mounts.get(remote) != "~/.ray/auth_token":
        return [f"file_mounts lacks {remote!r}: '~/.ray/auth_token' (has {mounts})"]
    return []


def shell_segments(command: str) -> list[list[str]]:
    """A shell command split at ; && || | into simple commands, each as shlex tokens."""
    return [shlex.split(part) for part in re.split(r"&&|\|\||;|\|", command) if part.strip()]


def ray_start_segments(commands: list[str]) -> list[list[str]]:
    found = []
    for command in commands:
        for tokens in shell_segments(command):
            words = [t for t in tokens if t != "env" and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", t)]
            if words[:2] == ["ray", "start"]:
                found.append(tokens)
    return found


def env_prefix(tokens: list[str]) -> dict[str, str]:
    env = {}
    for token in tokens:
        if token == "env":
            continue
        match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", token)
        if not match:
            break
        env[match[1]] = match[2]
    return env


def auth_mode_problems(config: dict) -> list[str]:
    """RAY_AUTH_MODE=token exported for every shell on the nodes, and in front of every `ray start`."""
    problems = []
    setup = config.get("initialization_commands", []) + config.get("setup_commands", [])
    if not any(re.search(r"export RAY_AUTH_MODE=token\b", c) for c in setup):
        problems.append("no initialization/setup command exports RAY_AUTH_MODE=token")
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        starts = ray_start_segments(config.get(key, []))
        if not starts:
            problems.append(f"{key} has no `ray start`")
        for tokens in starts:
            if env_prefix(tokens).get("RAY_AUTH_MODE") != "token":
                problems.append(f"{key}: `{shlex.join(tokens)}` does not start with RAY_AUTH_MODE=token")
    return problems


def dashboard_hosts(config: dict) -> list[str | None]:
    hosts = []
    for tokens in ray_start_segments(config.get("head_start_ray_commands", [])):
        host = None
        for i, token in enumerate(tokens):
            if token.startswith("--dashboard-host="):
                host = token.split("=", 1)[1]
            elif token == "--dashboard-host" and i + 1 < len(tokens):
                host = tokens[i + 1]
        hosts.append(host)
    return hosts


def dashboard_problems(config: dict) -> list[str]:
    """The dashboard / job server (8265) listens on the head's loopback; `ray dashboard` forwards it over SSH."""
    hosts = dashboard_hosts(config)
    if not hosts:
        return ["head_start_ray_commands has no `ray start`"]
    return [f"ray start --head uses --dashboard-host={h}, not 127.0.0.1" for h in hosts if h != "127.0.0.1"]


def security_group_problems(config: dict) -> list[str]:
    """Rules the config adds may open only TCP 22 to the whole internet (better: a narrower CIDR)."""
    problems = []
    rules = config.get("provider", {}).get("security_group", {}).get("IpPermissions", [])
    for rule in rules:
        cidrs = {r.get("CidrIp") for r in rule.get("IpRanges", [])} | {
            r.get("CidrIpv6") for r in rule.get("Ipv6Ranges", [])
        }
        if not cidrs & PUBLIC_CIDRS:
            continue
        protocol, low, high = str(rule.get("IpProtocol")).lower(), rule.get("FromPort"), rule.get("ToPort")
        if not (protocol in ("tcp", "6") and low == 22 and high == 22):
            problems.append(f"rule opens {protocol} {low}-{high} to {sorted(cidrs & PUBLIC_CIDRS)}")
    return problems


def install_problems(config: dict) -> list[str]:
    """The repository ('.') is mounted on the nodes and setup_commands pip-install that folder."""
    mounted = [remote for remote, local in config.get("file_mounts", {}).items() if local in (".", "./")]
    if not mounted:
        return ["file_mounts does not mount the repository ('.')"]
    remote = mounted[0].rstrip("/")
    pattern = re.compile(rf"pip install (-e |--editable )?{re.escape(remote)}/?(\s|$)")
    if not any(pattern.search(c) for c in config.get("setup_commands", [])):
        return [f"no setup command runs `pip install -e {remote}`"]
    return []


def shell_syntax_problems(config: dict) -> list[str]:
    """Every command the launcher runs parses as bash (`bash -n`)."""
    keys = [k for k in config if k.endswith("_commands")]
    problems = []
    for key in keys:
        for command in config[key]:
            result = subprocess.run(["bash", "-n", "-c", command], capture_output=True, text=True)
            if result.returncode:
                problems.append(f"{key}: {command!r}: {result.stderr.strip()}")
    return problems


CHECKS = [
    schema_problems,
    ray_validation_problems,
    gpu_worker_problems,
    head_problems,
    token_mount_problems,
    auth_mode_problems,
    dashboard_problems,
    security_group_problems,
    install_problems,
    shell_syntax_problems,
]


@pytest.fixture(scope="module")
def config():
    return load_cluster_config()


def test_first_line_is_the_command_that_runs_it():
    assert first_line_problems(CLUSTER_YAML.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("check", CHECKS, ids=lambda f: f.__name__)
def test_cluster_yaml_passes(config, check):
    assert check(config) == []


def test_ray_start_commands_are_found(config):
    # Guards the negative tests: the parser sees one `ray start` on the head and one on the workers.
    assert len(ray_start_segments(config["head_start_ray_commands"])) == 1
    assert len(ray_start_segments(config["worker_start_ray_commands"])) == 1
    assert dashboard_hosts(config) == ["127.0.0.1"]


def _gpu_worker(cfg: dict) -> dict:
    return next(t for n, t in node_types(cfg).items() if n != cfg["head_node_type"] and t["resources"].get("GPU"))


def _set_dashboard_host(cfg: dict, host: str) -> None:
    cfg["head_start_ray_commands"] = [
        c.replace("--dashboard-host=127.0.0.1", f"--dashboard-host={host}") for c in cfg["head_start_ray_commands"]
    ]


def _drop_worker_auth(cfg: dict) -> None:
    cfg["worker_start_ray_commands"] = [c.replace("RAY_AUTH_MODE=token ", "") for c in cfg["worker_start_ray_commands"]]


def _drop_auth_export(cfg: dict) -> None:
    for key in ("initialization_commands", "setup_commands"):
        cfg[key] = [c for c in cfg.get(key, []) if "RAY_AUTH_MODE" not in c]


def _open_dashboard_port(cfg: dict) -> None:
    rules = cfg["provider"].setdefault("security_group", {}).setdefault("IpPermissions", [])
    rules.append({"FromPort": 8265, "ToPort": 8265, "IpProtocol": "tcp", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]})


def _open_everything(cfg: dict) -> None:
    rules = cfg["provider"].setdefault("security_group", {}).setdefault("IpPermissions", [])
    rules.append({"FromPort": -1, "ToPort": -1, "IpProtocol": "-1", "Ipv6Ranges": [{"CidrIpv6": "::/0"}]})


BREAKAGES = {
    "unknown top-level key": (lambda c: c.update(gpu_workers=2), schema_problems),
    "unknown node-type key": (lambda c: _gpu_worker(c).update(gpus=1), schema_problems),
    "fractional resource": (lambda c: _gpu_worker(c)["resources"].update(GPU=0.5), schema_problems),
    "min_workers above global max": (lambda c: _gpu_worker(c).update(min_workers=9), ray_validation_problems),
    "no GPU worker type": (lambda c: _gpu_worker(c)["resources"].update(GPU=0), gpu_worker_problems),
    "GPU worker without max_workers": (lambda c: _gpu_worker(c).pop("max_workers"), gpu_worker_problems),
    "head with a GPU": (lambda c: head_type(c)["resources"].update(GPU=1), head_problems),
    "token not mounted": (lambda c: c["file_mounts"].pop("/home/ubuntu/.ray/auth_token"), token_mount_problems),
    "worker ray start without auth": (_drop_worker_auth, auth_mode_problems),
    "no RAY_AUTH_MODE export": (_drop_auth_export, auth_mode_problems),
    "dashboard on 0.0.0.0": (lambda c: _set_dashboard_host(c, "0.0.0.0"), dashboard_problems),
    "dashboard port open to the internet": (_open_dashboard_port, security_group_problems),
    "all traffic open over IPv6": (_open_everything, security_group_problems),
    "project not installed": (
        lambda c: c.update(setup_commands=[s for s in c["setup_commands"] if "pip install -e" not in s]),
        install_problems,
    ),
    "broken shell quoting": (lambda c: c["setup_commands"].append("echo 'unterminated"), shell_syntax_problems),
}


@pytest.mark.parametrize("name", BREAKAGES)
def test_each_check_catches_its_breakage(config, name):
    breakage, check = BREAKAGES[name]
    broken = copy.deepcopy(config)
    breakage(broken)
    assert check(config) == []
    assert check(broken), f"{check.__name__} missed: {name}"


def test_first_line_check_catches_a_missing_command():
    text = CLUSTER_YAML.read_text(encoding="utf-8")
    assert first_line_problems(text.split("\n", 1)[1])
