"""The wheel holds exactly Baton's three import names, with the dashboard's assets, and the
committed schemas are current."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from baton_schemas.export import rendered
from baton_server.api.dashboard.pages import SWAGGER, static_files

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (found,) = out.glob("*.whl")
    return found


def test_wheel_top_level_names(wheel: Path) -> None:
    names = {
        name.split("/")[0]
        for name in zipfile.ZipFile(wheel).namelist()
        if not name.split("/")[0].endswith(".dist-info")
    }
    assert names == {"baton", "baton_schemas", "baton_server"}
    files = zipfile.ZipFile(wheel).namelist()
    assert any(f.startswith("baton_server/db/migrations/") and f.endswith(".sql") for f in files)
    assert "baton/py.typed" in files


def test_wheel_ships_the_dashboard_and_its_api_docs_assets(wheel: Path) -> None:
    files = set(zipfile.ZipFile(wheel).namelist())
    shipped = static_files()
    assert {"index.html", "login.html", "app.css", "js/app.js", "js/pages/run.js"} <= set(shipped)
    missing = [f for f in shipped if f"baton_server/api/dashboard/static/{f}" not in files]
    assert not missing, f"dashboard assets not in the wheel: {missing}"
    # the docs page's Swagger UI comes from fastapi-offline's wheel, a requirement of the
    # server extra: installing `baton[server]` brings it, and nothing is fetched at run time
    metadata = next(f for f in files if f.endswith(".dist-info/METADATA"))
    required = [
        Requirement(line.split(":", 1)[1].strip())
        for line in zipfile.ZipFile(wheel).read(metadata).decode().splitlines()
        if line.startswith("Requires-Dist:")
    ]
    offline = [r for r in required if r.name == "fastapi-offline"]
    assert offline and offline[0].marker is not None
    assert offline[0].marker.evaluate({"extra": "server"})
    assert not offline[0].marker.evaluate({"extra": ""})
    assert {"swagger-ui-bundle.js", "swagger-ui.css"} <= {p.name for p in SWAGGER.iterdir()}


def test_committed_schemas_are_up_to_date() -> None:
    stale = [
        relative
        for relative, content in rendered().items()
        if not (ROOT / "schemas" / relative).exists() or (ROOT / "schemas" / relative).read_bytes() != content
    ]
    assert not stale, f"run `make schemas` and commit: stale {stale}"


def test_import_baton_does_not_load_server_code() -> None:
    probe = (
        "import sys, baton; "
        "bad = [m for m in ('fastapi', 'asyncpg', 'uvicorn', 'baton_server', 'aio_pika') "
        "if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
