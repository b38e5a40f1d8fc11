"""The package's shape: pipeline-ordered imports, a documented public API."""

import ast
import pathlib
import re

import swgmm_jax as sw

PKG = pathlib.Path(sw.__file__).resolve().parent
ROOT = PKG.parent


def _pipeline_order():
    """Module names in the order the package docstring lists them (``_validation``, ``_params``, ...)."""
    bullets = re.findall(r"^\* ([^:]+):", sw.__doc__, re.M)
    return [name for bullet in bullets for name in re.findall(r"``(\w+)``", bullet)]


def _package_imports(path):
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("swgmm_jax."):
            out.add(node.module.split(".")[1])
        elif isinstance(node, ast.ImportFrom) and node.module == "swgmm_jax":
            out.update(alias.name for alias in node.names)
    return out


def test_every_module_is_listed_in_pipeline_order():
    order = _pipeline_order()
    modules = sorted(p.stem for p in PKG.glob("*.py") if p.stem != "__init__")
    assert sorted(order) == modules


def test_no_import_runs_back_up_the_pipeline():
    order = _pipeline_order()
    rank = {name: i for i, name in enumerate(order)}
    for name in order:
        for dep in _package_imports(PKG / f"{name}.py"):
            assert rank[dep] < rank[name], f"{name} imports {dep}, which comes later in the pipeline"


def test_no_module_imports_private_names_of_another():
    for path in PKG.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("swgmm_jax"):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path.name} imports private names {private} from {node.module}"


def test_every_public_name_is_documented_with_an_example():
    docs = "".join(p.read_text() for p in (ROOT / "docs" / "api").glob("*.md"))
    for name in sw.__all__:
        obj = getattr(sw, name)
        if name == "datasets":
            continue
        assert f"::: swgmm_jax.{name}\n" in docs, f"{name} has no API page entry"
        if not isinstance(obj, (int, tuple)):  # constants (QUANTILE_ITERS, COVARIANCE_TYPES) aside
            assert ">>>" in (obj.__doc__ or ""), f"{name} has no doctested example"
