"""A blocking client of the events and webhooks API, for the CLI."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson

from .._transport import RequestRejected, TransportUnavailable
from .._transport.http import _detail, _quote, _tls_for


class EventsClient:
    def __init__(self, api_url: str, api_key: str | None = None, *, timeout: float = 10.0) -> None:
        headers = {"user-agent": "baton-cli"}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        self.api_url = api_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.api_url, headers=headers, timeout=timeout, verify=_tls_for(self.api_url)
        )

    def __enter__(self) -> EventsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def _check(self, method: str, path: str, response: httpx.Response) -> httpx.Response:
        status = response.status_code
        if status >= 500 or status == 429:
            raise TransportUnavailable(f"{method} {self.api_url}{path}: {status} {_detail(response)}")
        if status >= 400:
            raise RequestRejected(status, _detail(response))
        return response

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise TransportUnavailable(f"{method} {self.api_url}{path}: {exc!r}") from exc
        return self._check(method, path, response)

    # --- events -------------------------------------------------------------------------------

    def emit(self, events: list[dict[str, Any]]) -> list[str]:
        response = self._request(
            "POST", "/events", content=orjson.dumps(events), headers={"content-type": "application/json"}
        )
        return [str(i) for i in response.json()["ids"]]

    def read_events(self, params: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
        body = self._request("GET", "/events", params=params).json()
        return body["items"], body.get("next_cursor")

    def stream_events(self, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Follow the live stream; reconnects with Last-Event-ID if the connection drops."""
        last_id: str | None = None
        timeout = httpx.Timeout(self._http.timeout.connect, read=None)
        while True:
            headers = {"last-event-id": last_id} if last_id else {}
            try:
                with self._http.stream(
                    "GET", "/events/stream", params=params, headers=headers, timeout=timeout
                ) as response:
                    if response.status_code >= 400:
                        response.read()
                        self._check("GET", "/events/stream", response)
                    kind, data, event_id = "message", [], None
                    for line in response.iter_lines():
                        if line.startswith("event:"):
                            kind = line[6:].strip()
                        elif line.startswith("data:"):
                            data.append(line[5:].lstrip())
                        elif line.startswith("id:"):
                            event_id = line[3:].strip()
                        elif not line:
                            if kind == "event" and data:
                                last_id = event_id or last_id
                                yield orjson.loads("\n".join(data))
                            kind, data, event_id = "message", [], None
            except httpx.TransportError as exc:
                if last_id is None:
                    raise TransportUnavailable(f"GET {self.api_url}/events/stream: {exc!r}") from exc
            # the stream ended (a server restart, too slow a reader): reconnect, and the server
            # backfills from last_id
            time.sleep(1.0)

    # --- webhooks ----------------------------------------------------------------------------

    def create_webhook(self, body: dict[str, Any]) -> dict[str, Any]:
        response = self._request(
            "POST", "/webhooks", content=orjson.dumps(body), headers={"content-type": "application/json"}
        )
        return response.json()  # type: ignore[no-any-return]

    def list_webhooks(self) -> list[dict[str, Any]]:
        return self._request("GET", "/webhooks").json()  # type: ignore[no-any-return]

    def read_webhook(self, name: str) -> dict[str, Any]:
        return self._request("GET", f"/webhooks/{_quote(name)}").json()  # type: ignore[no-any-return]

    def delete_webhook(self, name: str) -> None:
        self._request("DELETE", f"/webhooks/{_quote(name)}")
