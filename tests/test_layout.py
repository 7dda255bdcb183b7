"""The tests' layout: every source module of the layer and of the dev tooling has its mirror
test module, and that module imports the source module it tests.

    chat_core/<sub>/<mod>.py      → tests/<sub>/test_<mod>.py
    chat_core/<mod>.py            → tests/test_<mod>.py
    chat_core/<pkg>/__init__.py   → tests/<pkg>/test_<pkg>.py (when it defines something)
    chat_dev/<mod>.py             → tests/dev/test_<mod>.py

An `__init__.py` that only re-exports (no function or class of its own) needs none.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
PACKAGES = [
    # (the package's folder, its import name, where its mirror tests live)
    (ROOT / "layers" / "chat" / "chat_core", "chat_core", TESTS),
    (ROOT / "dev" / "chat_dev", "chat_dev", TESTS / "dev"),
]


def _defines_something(tree: ast.Module) -> bool:
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        for node in tree.body
    )


def mirrors() -> list[tuple[str, Path, Path]]:
    """(source module's dotted name, its file, the path of its mirror test module)."""
    found = []
    for folder, name, tests in PACKAGES:
        for source in sorted(folder.rglob("*.py")):
            parts = source.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                if not _defines_something(ast.parse(source.read_text())):
                    continue
                parts = parts[:-1]
                if not parts:  # a top package's own __init__ has nowhere to mirror
                    raise AssertionError(f"{source} defines code: move it into a module")
                mirror = tests.joinpath(*parts, f"test_{parts[-1]}.py")
            else:
                mirror = tests.joinpath(*parts[:-1], f"test_{parts[-1]}.py")
            found.append((".".join((name, *parts)), source, mirror))
    return found


def imported_modules(tree: ast.Module) -> set[str]:
    """Every module an `import` or `from … import` names, anywhere in the test module:
    `from chat_core.api import streams` names both `chat_core.api` and `chat_core.api.streams`."""
    named: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            named.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            named.add(node.module)
            named.update(f"{node.module}.{alias.name}" for alias in node.names)
    return named


def imports(tree: ast.Module, module: str) -> bool:
    return any(n == module or n.startswith(f"{module}.") for n in imported_modules(tree))


def test_every_source_module_has_a_mirror_test_module_that_imports_it():
    missing, not_importing = [], []
    for module, source, mirror in mirrors():
        if not mirror.exists():
            missing.append(f"{source.relative_to(ROOT)} → {mirror.relative_to(ROOT)}")
        elif not imports(ast.parse(mirror.read_text()), module):
            not_importing.append(f"{mirror.relative_to(ROOT)} does not import {module}")
    assert not missing, "source modules without a mirror test module:\n" + "\n".join(missing)
    assert not not_importing, "mirror test modules:\n" + "\n".join(not_importing)


@pytest.mark.parametrize(
    ("code", "module", "found"),
    [
        ("from chat_core.api import streams", "chat_core.api.streams", True),
        ("from chat_core.api.streams import ChatRequest", "chat_core.api.streams", True),
        ("import chat_core.fanout", "chat_core.fanout", True),
        ("def f():\n    from chat_core import fanout", "chat_core.fanout", True),
        ("from chat_core.api import streams", "chat_core.api.sessions", False),
        ("from chat_core import api", "chat_core.api.streams", False),
        ("import chat_core.fanouts", "chat_core.fanout", False),
        ("# chat_core.fanout\n'chat_core.fanout'", "chat_core.fanout", False),
    ],
)
def test_the_check_sees_an_import_only_when_one_names_the_module(code, module, found):
    assert imports(ast.parse(code), module) is found


def test_the_layout_covers_both_packages_and_exempts_only_reexporting_inits():
    names = {module for module, _, _ in mirrors()}
    assert {"chat_core.fanout", "chat_core.api.streams", "chat_dev.scripted_model"} <= names
    assert "chat_core.sessions" in names  # its __init__ defines get_session_store
    assert "chat_core.protocol" not in names  # its __init__ only re-exports
