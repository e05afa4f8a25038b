"""A blocking client of the automations API, for the CLI (`baton automation ...`)."""

from __future__ import annotations

from typing import Any

import orjson

from .._transport.http import _quote
from ._client import EventsClient

_JSON = {"content-type": "application/json"}


class AutomationsClient(EventsClient):
    def __enter__(self) -> AutomationsClient:
        return self

    def create_automation(self, body: dict[str, Any]) -> dict[str, Any]:
        response = self._request("POST", "/automations", content=orjson.dumps(body), headers=_JSON)
        return response.json()  # type: ignore[no-any-return]

    def replace_automation(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self._request(
            "PUT", f"/automations/{_path(name)}", content=orjson.dumps(body), headers=_JSON
        )
        return response.json()  # type: ignore[no-any-return]

    def list_automations(self) -> list[dict[str, Any]]:
        return self._request("GET", "/automations").json()  # type: ignore[no-any-return]

    def read_automation(self, name: str) -> dict[str, Any]:
        return self._request("GET", f"/automations/{_path(name)}").json()  # type: ignore[no-any-return]

    def set_enabled(self, name: str, enabled: bool) -> dict[str, Any]:
        verb = "resume" if enabled else "pause"
        return self._request("POST", f"/automations/{_path(name)}/{verb}").json()  # type: ignore[no-any-return]

    def delete_automation(self, name: str) -> None:
        self._request("DELETE", f"/automations/{_path(name)}")

    def read_firings(self, name: str, limit: int) -> list[dict[str, Any]]:
        body = self._request("GET", f"/automations/{_path(name)}/firings", params={"limit": limit}).json()
        return body["items"]  # type: ignore[no-any-return]


def _path(name: str) -> str:
    """A name as the path's tail: a deployment trigger's name (`flow/deployment:trigger-0`)
    keeps its slashes, which the route takes whole."""
    return "/".join(_quote(part) for part in name.split("/"))
