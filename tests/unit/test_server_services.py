"""`baton server start --service X` imports only what X runs: the service table names real
classes, and a process without the API never loads FastAPI, uvicorn or Jinja2."""

from __future__ import annotations

import importlib
import subprocess
import sys

from baton_server import server


def test_every_service_name_resolves_to_a_class_with_start_and_stop() -> None:
    for name in server.SERVICES:
        module, _, cls = server._CLASSES[name].partition(":")
        service = getattr(importlib.import_module(module), cls)
        assert callable(service.start) and callable(service.stop)


def test_a_scheduler_process_does_not_import_the_api() -> None:
    probe = (
        "import sys, baton_server.server, baton_server.scheduler.service;"
        "print(' '.join(m for m in ('fastapi', 'uvicorn', 'jinja2', 'starlette') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == ""
