"""The package layering DESIGN.md's one-way data flow implies, checked on the source itself.

The components (extender, profiler, predictor) talk only through Kubernetes objects, so none
imports another; what they share lives in `kinship/`, which imports no component (only the CLI,
the composition root, wires them together). And no module reaches into another's private names:
a helper two modules need is public in a shared module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from kinship.errors import describe_validation_error
from kinship.quantity import quantity

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = ("extender", "profiler", "predictor")
COMPOSITION_ROOTS = {"kinship/cli.py"}


def modules() -> Iterator[tuple[str, ast.Module]]:
    for package in ("kinship", *COMPONENTS):
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(), str(path))


def imports(tree: ast.Module) -> Iterator[tuple[str, list[str]]]:
    """(module, names imported from it) for every import, including those inside functions."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []


def test_components_import_only_themselves_and_the_shared_package() -> None:
    wrong = []
    for where, tree in modules():
        own = where.split("/", 1)[0]
        if where in COMPOSITION_ROOTS:
            continue
        for module, _ in imports(tree):
            top = module.split(".", 1)[0]
            if top in COMPONENTS and top != own:
                wrong.append(f"{where} imports {module}")
    assert wrong == []


def test_no_module_imports_another_modules_private_names() -> None:
    wrong = [
        f"{where} imports {name} from {module}"
        for where, tree in modules()
        for module, names in imports(tree)
        if module.split(".", 1)[0] in ("kinship", *COMPONENTS)
        for name in names
        if name.startswith("_")
    ]
    assert wrong == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2", 2.0), ("500m", 0.5), ("1Gi", 2.0**30), ("1.5G", 1.5e9), ("1e3", 1000.0), (3, 3.0), (0.25, 0.25)],
)
def test_quantity_reads_kubernetes_quantities_in_base_units(text: str | int | float, expected: float) -> None:
    assert quantity(text) == expected


@pytest.mark.parametrize("bad", ["lots", "1Gb", "", "nan", "inf", "1e400", True])
def test_quantity_rejects_what_is_no_count_of_anything(bad: str | bool) -> None:
    with pytest.raises(ValueError, match="invalid quantity"):
        quantity(bad)


def test_validation_errors_read_as_the_yaml_path_with_the_scalar_that_was_given() -> None:
    err = {"loc": ("spec", "edges", 0, "weight"), "msg": "Input should be greater than 0", "input": -2}
    assert describe_validation_error(err) == "spec.edges[0].weight: Input should be greater than 0 (got -2)"
    whole = {"loc": (), "msg": "Input should be a valid dictionary", "input": ["a"]}
    assert describe_validation_error(whole) == "<document>: Input should be a valid dictionary"
