"""Nothing is fetched from another host: the API docs page (Swagger UI from local assets) and the
dashboard's pages load only from the server itself, in a real Chromium."""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.sync_api import Request, expect

from .conftest import Dashboard


def _origins(dash: Dashboard) -> list[str]:
    seen: list[str] = []

    def record(request: Request) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in ("http", "https", "ws", "wss"):
            seen.append(f"{parts.scheme}://{parts.netloc}")

    dash.page.on("request", record)
    return seen


def test_the_api_docs_load_nothing_from_a_cdn(dash: Dashboard) -> None:
    origins = _origins(dash)
    page = dash.page
    page.goto(f"{dash.base}/docs")  # FastAPI's usual address leads to Baton's docs
    page.wait_for_url("**/api/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Baton")
    page.wait_for_selector(".swagger-ui .opblock")  # the operations, from /api/openapi.json
    expect(page.locator(".swagger-ui .authorize")).to_be_visible()  # bearer auth declared
    dash.shot("api-docs")
    served = {dash.base}
    assert origins and set(origins) == served, sorted(set(origins) - served)
    scripts = page.eval_on_selector_all("script[src], link[href]", "els => els.map(e => e.src || e.href)")
    assert scripts and all(s.startswith(dash.base) for s in scripts), scripts


def test_the_dashboard_loads_nothing_from_another_host(dash: Dashboard) -> None:
    origins = _origins(dash)
    dash.sign_in(dash.key("read"))
    for route, ready in (("runs", "#histogram"), ("work-pools", "#pools"), ("events", "#event-filters")):
        dash.open(route, ready)
    assert set(origins) == {dash.base}, sorted(set(origins))
