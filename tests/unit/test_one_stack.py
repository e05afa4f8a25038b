"""One AMQP stack per process: no module of the SDK, the schemas or the services imports
aio-pika or aiormq, at any level (read from the source; nothing is imported). Every process
reaches the broker through `baton._amqp` alone; aio-pika stays a test dependency, for clients
written as a user would write them."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..support.import_graph import imports

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = [ROOT / "sdk" / "baton", ROOT / "schemas" / "baton_schemas", ROOT / "services" / "baton_server"]
OTHER_STACKS = ("aio_pika", "aiormq")


@pytest.mark.parametrize("package", PACKAGES, ids=lambda path: path.name)
def test_no_module_imports_another_amqp_client(package: Path) -> None:
    found = [
        f"{i.source}:{i.line} imports {i.target} ({i.kind})"
        for i in imports(package)
        if i.target.split(".", 1)[0] in OTHER_STACKS
    ]
    assert found == []


def test_the_installed_package_does_not_require_aio_pika() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    dependencies = text.split("dependencies = [", 1)[1].split("]", 1)[0]
    assert "aio-pika" not in dependencies and "aiormq" not in dependencies
    assert "pamqp" in dependencies  # what baton._amqp encodes its rare methods with


# The methods `baton._amqp` packs by hand, because they are on the hot path; every other method
# goes through pamqp (`codec.encode_method`). (class id, method id) as in the AMQP 0-9-1 spec.
HOT_METHODS = {(60, 40): "basic.publish", (60, 80): "basic.ack", (60, 120): "basic.nack"}


def test_only_the_hot_methods_are_packed_by_hand() -> None:
    """Every hand-packed method frame (`codec.method_frame(channel, class, method, ...)`) in
    `baton._amqp` names a hot method with literal ids; the rest are pamqp's."""
    import ast

    packed = []
    for path in sorted((ROOT / "sdk" / "baton" / "_amqp").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == (
                "method_frame"
            ):
                ids = node.args[1:3]
                assert all(isinstance(i, ast.Constant) for i in ids), f"{path.name}:{node.lineno}"
                packed.append((path.name, (ids[0].value, ids[1].value)))  # type: ignore[attr-defined]
    assert packed, "the hot frames are packed by hand"
    assert {ids for _, ids in packed} <= set(HOT_METHODS), packed
