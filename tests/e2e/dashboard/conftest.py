"""The dashboard in a real headless Chromium (Debian's `chromium`, driven by Playwright) against
the session's real server, with real workers and runs (the worker tests' fixtures).

Screenshots of the pages go to `.test-output/screenshots/` at the repository's root (ignored by
git), or to `$BATON_SCREENSHOTS`, for a person to look at after the run.
"""

from __future__ import annotations

import os
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from baton._amqp import Connection, Properties
from baton._loop_thread import LoopThread

from ...support.processes import ROOT
from ..conftest import LiveServer
from ..worker.conftest import Db, Setup, db, setup, wait_until  # noqa: F401  (fixtures)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(os.environ.get("BATON_SCREENSHOTS") or ROOT / ".test-output" / "screenshots")
WAIT_MS = 30_000

FLOWS = """
import time

from baton import flow, task
from baton.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact


@task
def load(i: int) -> int:
    print(f"loading {i}")
    return i


@task
def total(values: list) -> int:
    return sum(values)


@flow(log_prints=True)
def child(n: int) -> int:
    print(f"child got {n}")
    return n * 2


@flow(log_prints=True)
def pipeline(n: int = 3, sleep: float = 0.0, marker: str = "") -> int:
    print(f"pipeline starting {marker}")
    time.sleep(sleep)
    loaded = [load.submit(i) for i in range(n)]
    s = total(loaded)
    child(s)
    create_markdown_artifact("# Report\\n<b>not bold</b>", key="report", description="the summary")
    create_table_artifact([{"item": i, "value": i * 10} for i in range(n)], key="loads")
    create_link_artifact("https://example.com/out", link_text="the output", key="out")
    print(f"pipeline done {marker}")
    return s


@flow
def sleepy(seconds: float = 120.0) -> None:
    time.sleep(seconds)


@flow
def fails() -> None:
    raise ValueError("this flow always fails")


@flow(log_prints=True)
def typed(count: int, label: str = "x") -> str:
    print(f"typed {count} {label}")
    return label * count
"""


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    # per module, never the session: while Playwright's sync driver is open, its event loop
    # counts as running in this thread, and every later asyncio.run() would refuse to start
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), (
        f"{CHROMIUM} is missing: `apt-get install chromium` (scripts/test.sh does)"
    )
    found = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield found
    found.close()


@dataclass
class Dashboard:
    """One test's browser context (its own cookies) on the live server, and its keys."""

    server: LiveServer
    context: BrowserContext
    page: Page
    setup: Setup

    @property
    def base(self) -> str:
        return self.server.api_url.removesuffix("/api")

    def key(self, *scopes: str) -> str:
        answer = self.setup.api.post("/api_keys", {"name": f"ui-{'-'.join(scopes)}", "scopes": list(scopes)})
        return str(answer["secret"])

    def sign_in(self, key: str) -> None:
        self.page.goto(f"{self.base}/ui/login")
        self.page.fill("input[name=key]", key)
        self.page.click("button[type=submit]")
        self.page.wait_for_selector("#who:not(:empty)", timeout=WAIT_MS)

    def open(self, route: str, ready: str) -> Page:
        self.page.goto(f"{self.base}/#/{route}")
        self.page.wait_for_selector(ready, timeout=WAIT_MS)
        return self.page

    def shot(self, name: str, page: Page | None = None) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (page or self.page).screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    def fetch(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        csrf: bool = True,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """A call from the page's own JavaScript, with its cookie (and its CSRF token)."""
        return self.page.evaluate(
            """async ([method, path, body, csrf, extra]) => {
                 const session = await (await fetch("/api/ui/session")).json();
                 const headers = {"content-type": "application/json", ...extra};
                 if (csrf && session.csrf) headers["x-csrf-token"] = session.csrf;
                 const sent = method === "GET" ? undefined : JSON.stringify(body === null ? {} : body);
                 const r = await fetch(path, {method, headers, body: sent});
                 return {status: r.status, body: await r.text()};
               }""",
            [method, path, body, csrf, headers or {}],
        )

    def pool(self) -> str:
        """A second pool of this test's, that no worker serves: its runs stay Scheduled."""
        name = f"idle-{self.setup.suffix}"
        self.setup.api.post("/work_pools", {"name": name})
        return name

    def automation(
        self, name: str, event: str, deployment: dict[str, Any], **parameters: Any
    ) -> dict[str, Any]:
        """An automation that runs `deployment` on each `event`, once every router has it."""
        created = self.setup.api.post(
            "/automations",
            {
                "name": name,
                "trigger": {"expect": [event]},
                "actions": [
                    {
                        "type": "run-deployment",
                        "deployment": deployment["id"],
                        "parameters": parameters,
                    }
                ],
            },
        )
        in_every_router(self.setup.db, created["revision"])
        return created


@pytest.fixture
def dash(
    live_server: LiveServer,
    browser: Browser,
    setup: Setup,  # noqa: F811
) -> Iterator[Dashboard]:
    (setup.folder / "flows.py").write_text(textwrap.dedent(FLOWS))
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)  # a loaded machine is slow, not wrong
    try:
        yield Dashboard(live_server, context, page, setup)
    finally:
        context.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def http(server: LiveServer, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.api_url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def in_every_router(database: Db, revision: int) -> None:
    """Wait until every running router has loaded this automation revision."""

    def behind() -> bool:
        late = database.fetchval(
            """SELECT count(*) FROM router_replicas
               WHERE heartbeat > now() - interval '10 seconds' AND revision < $1""",
            revision,
        )
        return int(late) == 0

    wait_until(behind, timeout=15, what=f"every router at revision {revision}")


def amqp_publish(
    server: LiveServer, exchange: str, routing_key: str, body: bytes, properties: Properties
) -> None:
    """Publish one message straight to RabbitMQ (confirmed), as an outside system does.

    On a loop thread of its own: the test's thread belongs to Playwright's sync driver."""

    async def publish() -> None:
        connection = await Connection.open(server.backends.broker_url, name="e2e-dashboard")
        try:
            channel = await connection.channel(confirms=True)
            confirm = channel.publish(exchange, routing_key, body, properties, mandatory=True)
            assert confirm is not None
            await confirm
        finally:
            await connection.close()

    thread = LoopThread("e2e-amqp")
    try:
        thread.submit(publish()).result(30)
    finally:
        thread.stop()
