"""The wheel holds exactly Baton's three import names, and the committed schemas are current."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from baton_schemas.export import rendered

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_top_level_names(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    names = {
        name.split("/")[0]
        for name in zipfile.ZipFile(wheel).namelist()
        if not name.split("/")[0].endswith(".dist-info")
    }
    assert names == {"baton", "baton_schemas", "baton_server"}
    files = zipfile.ZipFile(wheel).namelist()
    assert any(f.startswith("baton_server/db/migrations/") and f.endswith(".sql") for f in files)
    assert "baton/py.typed" in files


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
