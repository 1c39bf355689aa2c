"""No module of pointapp imports one of a higher layer (pointapp/layers.py), and no step imports another."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pointapp.layers import LAYERS, layer_of

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(__file__).resolve().parents[1] / "pointapp"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Every pointapp module ``path`` imports, at the top, in a function or for types only."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "pointapp")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "pointapp":
            base = node.module
            for alias in node.names:  # `from pointapp import engine` imports the module pointapp.engine
                submodule = PACKAGE.parent.joinpath(*f"{base}.{alias.name}".split("."))
                is_module = submodule.with_suffix(".py").exists() or (submodule / "__init__.py").exists()
                found.add(f"{base}.{alias.name}" if is_module else base)
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_is_in_a_layer() -> None:
    for path in MODULES:
        layer_of(module_name(path))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_no_module_imports_a_higher_layer(path: Path) -> None:
    name = module_name(path)
    higher = sorted(other for other in imported(path) if layer_of(other) > layer_of(name))
    assert higher == [], (f"{name} (layer {LAYERS[layer_of(name)][0]}) imports "
                          + ", ".join(f"{other} (layer {LAYERS[layer_of(other)][0]})" for other in higher))


@pytest.mark.parametrize("path", sorted((PACKAGE / "steps").rglob("*.py")), ids=lambda p: module_name(p))
def test_no_step_imports_another_step(path: Path) -> None:
    name = module_name(path)
    if name == "pointapp.steps":
        return  # the step list loads each step (and the name check walks them)
    own = ".".join(name.split(".")[:3])  # a step that is a package imports its own modules
    others = sorted(other for other in imported(path)
                    if other.startswith("pointapp.steps.") and not other.startswith(own))
    assert others == [], f"{name} imports {', '.join(others)}: read their outputs, or move what they share lower"


def test_the_check_finds_an_import_that_reaches_up(tmp_path: Path) -> None:
    """The parse sees imports inside functions too: a lower module importing the engine is caught."""
    source = tmp_path / "example.py"
    source.write_text("def f():\n    from pointapp import engine\n    from pointapp.steps.network import NAME\n")
    assert imported(source) == {"pointapp.engine", "pointapp.steps.network"}
    assert layer_of("pointapp.engine") > layer_of("pointapp.target")


def test_the_readme_module_map_names_every_module_and_only_modules_that_exist() -> None:
    """The README's module map (Development) has one row per module of the package, and no other."""
    readme = (ROOT / "README.md").read_text()
    table = readme.split("### Module map", 1)[1].split("\n### ", 1)[0]
    listed = {row.split("`")[1] for row in table.splitlines() if row.startswith("| `")}
    package = ROOT / "pointapp"
    modules = {str(path.relative_to(package)) for path in package.glob("*.py") if path.name not in ("__init__.py", "__main__.py")}
    modules |= {str(path.relative_to(package)) for path in (package / "steps").glob("*.py")}
    modules |= {f"{path.relative_to(package)}/" for path in (package / "steps").iterdir() if (path / "__init__.py").exists()}
    assert listed == modules, f"missing from the map: {sorted(modules - listed)}; no such module: {sorted(listed - modules)}"
    layers = readme.split("### Layers", 1)[1].split("\n### ", 1)[0]
    for name, members in LAYERS:
        assert f"**{name}**" in layers, f"the README's layers lack {name}"
        for module in members - {"", "__main__", "layers", "steps"}:
            assert f"`{module}`" in layers, f"the README's {name} layer lacks {module}"
