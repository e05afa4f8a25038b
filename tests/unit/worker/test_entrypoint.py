"""Loading a deployment's flow from its entrypoint, and readable errors when it cannot be."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from baton import Flow
from baton._definitions import FlowDefinition
from baton._entrypoints import EntrypointError, load_flow


@pytest.fixture(autouse=True)
def _isolated_imports(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        del sys.modules[name]


def _write(folder: Path, relative: str, text: str) -> None:
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


def test_a_flow_in_a_file_is_loaded_with_its_sibling_modules(tmp_path: Path) -> None:
    _write(tmp_path, "pipelines/helpers_x1.py", "GREETING = 'hi'\n")
    _write(
        tmp_path,
        "pipelines/etl_x1.py",
        """
        from baton import flow
        from helpers_x1 import GREETING

        @flow(name="etl")
        def main() -> str:
            return GREETING
        """,
    )
    loaded = load_flow("pipelines/etl_x1.py:main", tmp_path)
    assert isinstance(loaded, Flow) and loaded.name == "etl"
    assert loaded.fn() == "hi"


def test_a_flow_in_a_module_is_loaded_by_its_dotted_name(tmp_path: Path) -> None:
    _write(tmp_path, "pkg_x2/__init__.py", "")
    _write(tmp_path, "pkg_x2/flows.py", "from baton import flow\n\n@flow\ndef go() -> int:\n    return 2\n")
    assert load_flow("pkg_x2.flows:go", tmp_path).fn() == 2


def test_a_plain_function_is_made_a_flow(tmp_path: Path) -> None:
    _write(tmp_path, "plain_x3.py", "def job() -> int:\n    return 3\n")
    loaded = load_flow("plain_x3.py:job", tmp_path)
    assert isinstance(loaded, FlowDefinition) and loaded.name == "job"


@pytest.mark.parametrize(
    ("entrypoint", "files", "message"),
    [
        ("missing_x4.py:main", {}, "entrypoint file 'missing_x4.py' not found in"),
        ("there_x5.py:nope", {"there_x5.py": "x = 1\n"}, "'there_x5.py' has no 'nope'"),
        (
            "broken_x6.py:main",
            {"broken_x6.py": "import os\nimport not_installed_x6\n"},
            "could not be imported: ModuleNotFoundError: No module named 'not_installed_x6' "
            "(broken_x6.py, line 2)",
        ),
        (
            "syntax_x7.py:main",
            {"syntax_x7.py": "def main(:\n    pass\n"},
            "could not be imported: SyntaxError: ",
        ),
        (
            "raises_x8.py:main",
            {"raises_x8.py": "raise RuntimeError('config missing')\n"},
            "RuntimeError: config missing (raises_x8.py, line 1)",
        ),
        ("exits_x9.py:main", {"exits_x9.py": "import sys\nsys.exit(4)\n"}, "SystemExit: 4"),
        ("no_module_x10.sub:main", {}, "entrypoint module 'no_module_x10.sub' not found"),
        ("not_a_flow_x11.py:VALUE", {"not_a_flow_x11.py": "VALUE = 3\n"}, "is not a flow (a int)"),
        ("flows.py", {}, "is not of the form 'path/file.py:function'"),
        (None, {}, "the deployment has no entrypoint"),
    ],
)
def test_what_cannot_be_loaded_says_why(
    tmp_path: Path, entrypoint: str | None, files: dict[str, str], message: str
) -> None:
    for relative, text in files.items():
        _write(tmp_path, relative, text)
    with pytest.raises(EntrypointError) as caught:
        load_flow(entrypoint, tmp_path)
    assert message in str(caught.value)
