"""The package's layering (docs/architecture.md): no module imports a layer above its own, and no import cycles.

Read statically from the source (every `import`, including the lazy ones inside functions), so that the test
needs no torch or Ray and fails as soon as someone adds an upward import.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "sentiment_ray"
LAYERS = ["core", "data", "models", "training", "tuning", "inference", "evaluation", "cli", "api"]
FACADE = {  # `from sentiment_ray import SentimentPredictor, train, score, evaluate`
    ("sentiment_ray", "sentiment_ray.inference.predictor"),
    ("sentiment_ray", "sentiment_ray.api"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sentiment_ray"):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names if _is_module(f"{node.module}.{a.name}")}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("sentiment_ray")}
    return found


def _is_module(dotted: str) -> bool:
    path = PACKAGE.parent / dotted.replace(".", "/")
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else "core"


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {m: imports_of(p) - {m} for m, p in modules.items()}


def test_no_module_imports_a_layer_above_its_own():
    upward = [
        f"{m} ({layer(m)}) imports {d} ({layer(d)})"
        for m, deps in graph().items()
        for d in deps
        if d != "sentiment_ray" and LAYERS.index(layer(d)) > LAYERS.index(layer(m)) and (m, d) not in FACADE
    ]
    assert upward == []


def test_there_are_no_import_cycles():
    edges, cycles, done = graph(), [], set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycles.append(" -> ".join([*path[path.index(module) :], module]))
            return
        if module in done:
            return
        for dep in sorted(edges.get(module, ())):
            visit(dep, [*path, module])
        done.add(module)

    for module in sorted(edges):
        visit(module, [])
    assert cycles == []


def test_the_benchmarks_are_not_in_the_package():
    assert not (PACKAGE / "bench").exists() and (PACKAGE.parent / "benchmarks" / "common.py").is_file()
