"""The package's import graph keeps DESIGN.md's rules: layers point down, no circles, jobs only from the CLI.

Every ``import`` in every module counts, those inside functions too (a lazy import is
still a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .helpers import ROOT

PACKAGE = ROOT / "rise_bench"

#: Layers from the bottom up: a module may import its own layer group or lower layers only.
LAYERS = [
    ["rise_bench.errors", "rise_bench.files", "rise_bench.seeds", "rise_bench.console"],
    ["rise_bench.parameters"],
    ["rise_bench.registry"],
    ["rise_bench.images"],
    ["rise_bench.backends"],
    ["rise_bench.onnx_model"],
    ["rise_bench.models"],
    ["rise_bench.batch_size"],
    ["rise_bench.datasets"],
    ["rise_bench.explainers", "rise_bench.metrics"],
    [
        "rise_bench.evaluation.presets",
        "rise_bench.evaluation.config",
        "rise_bench.evaluation.results",
        "rise_bench.evaluation.artifacts",
        "rise_bench.evaluation.provenance",
        "rise_bench.evaluation.distributed",
        "rise_bench.evaluation.sources",
    ],
    ["rise_bench.reporting"],
    ["rise_bench.evaluation.runner", "rise_bench.explain"],
    ["rise_bench.cli", "rise_bench.evaluation", "rise_bench"],
    ["rise_bench.__main__"],
]
#: The jobs the CLI runs: nothing else imports them.
JOBS = {"rise_bench.evaluation.runner", "rise_bench.explain"}
#: Imports that DESIGN.md forbids even where the layers would allow them.
FORBIDDEN = [
    ("rise_bench.metrics", "rise_bench.explainers"),
    ("rise_bench.metrics", "rise_bench.evaluation"),
    ("rise_bench.explainers", "rise_bench.datasets"),
    ("rise_bench.explainers", "rise_bench.evaluation"),
    ("rise_bench.datasets", "rise_bench.metrics"),
    ("rise_bench.reporting", "rise_bench.evaluation.runner"),
    ("rise_bench.reporting", "rise_bench.evaluation.sources"),
    ("rise_bench.reporting", "rise_bench.evaluation.distributed"),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The rise_bench modules ``name`` imports, resolved (``from . import x`` names module x when it is one)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("rise_bench")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("rise_bench"):
                continue
            submodules = {f"{target}.{alias.name}" for alias in node.names} & known
            found |= submodules or {target}
    return {module for module in found if module in known} - {name}


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(name, path, set(found)) for name, path in found.items()}


def layer_of(module: str) -> tuple[int, str]:
    """(layer index, the group prefix) of the longest prefix listed in ``LAYERS``."""
    best = (-1, "")
    for index, group in enumerate(LAYERS):
        for prefix in group:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best[1]):
                best = (index, prefix)
    assert best[0] >= 0, f"{module} is in no layer: add it to LAYERS"
    return best


def same_package(group: str, other: str) -> bool:
    """Groups of one layer may import each other only inside one subpackage (evaluation's low modules)."""
    parent, other_parent = group.rpartition(".")[0], other.rpartition(".")[0]
    return group == other or group == "rise_bench" or (parent == other_parent and parent != "rise_bench")


def test_every_module_has_a_layer():
    for module in modules():
        layer_of(module)


def test_nothing_imports_upward_or_sideways():
    problems = []
    for module, targets in graph().items():
        level, group = layer_of(module)
        for target in targets:
            other_level, other_group = layer_of(target)
            if other_level > level or (other_level == level and not same_package(group, other_group)):
                problems.append(f"{module} -> {target}")
    assert not problems, "imports upward or across a layer:\n" + "\n".join(sorted(problems))


@pytest.mark.parametrize(("importer", "imported"), FORBIDDEN)
def test_design_rules(importer, imported):
    offenders = [
        f"{module} -> {target}"
        for module, targets in graph().items()
        if module == importer or module.startswith(importer + ".")
        for target in targets
        if target == imported or target.startswith(imported + ".")
    ]
    assert not offenders, offenders


def test_only_the_cli_imports_the_jobs():
    offenders = [
        f"{module} -> {target}"
        for module, targets in graph().items()
        for target in targets & JOBS
        if module != "rise_bench.cli"
    ]
    assert not offenders, offenders


def test_no_import_circles():
    edges = graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for target in sorted(edges[module]):
            if state.get(target) == 1:
                start = trail.index(target) if target in trail else len(trail)
                cycles.append(" -> ".join(trail[start:] + [module, target]))
            elif target not in state:
                visit(target, trail + [module])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [])
    assert not cycles, cycles


def test_the_checker_sees_lazy_and_relative_imports(tmp_path):
    """The rules above can fail: a lazy relative import of the runner from config is found and ranks upward."""
    fake = tmp_path / "config.py"
    fake.write_text("def late():\n    from .runner import evaluate\n    from ..metrics import deletion\n")
    found = imports("rise_bench.evaluation.config", fake, set(modules()))
    assert found == {"rise_bench.evaluation.runner", "rise_bench.metrics.deletion"}
    assert layer_of("rise_bench.evaluation.runner")[0] > layer_of("rise_bench.evaluation.config")[0]
