"""An SDK of another version is refused by the API before anything is done for it (issue 11,
point 6): a 409 that names both sides' versions. Requests that do not say their version (curl,
the dashboard) are not checked."""

from __future__ import annotations

import httpx

from baton_schemas import compat


def _versions(written: int, oldest: int) -> dict[str, str]:
    return {
        compat.VERSION_HEADER: "9.9.9",
        compat.SCHEMA_HEADER: str(written),
        compat.MIN_SCHEMA_HEADER: str(oldest),
    }


async def test_a_client_too_new_or_too_old_is_refused_naming_both_versions(api: httpx.AsyncClient) -> None:
    server = f"the server (baton {compat.baton_version()}, message schema {compat.SCHEMA_VERSION}"
    newer = compat.SCHEMA_VERSION + 5
    too_new = await api.get("/api/flows", headers=_versions(newer, newer))
    assert too_new.status_code == 409
    detail = too_new.json()["detail"]
    assert f"this client (baton 9.9.9, message schema {newer}" in detail
    assert "is too new for" in detail and server in detail

    too_old = await api.get("/api/flows", headers=_versions(compat.MIN_SCHEMA_VERSION - 1, 0))
    assert too_old.status_code == 409 and "is too old for" in too_old.json()["detail"]
    # refused before the body or the route: a change is not made
    created = await api.post("/api/flows", json={"name": "refused-by-version"}, headers=_versions(99, 99))
    assert created.status_code == 409
    names = [flow["name"] for flow in (await api.get("/api/flows")).json()]
    assert "refused-by-version" not in names


async def test_a_client_of_this_version_or_one_that_does_not_say_is_served(api: httpx.AsyncClient) -> None:
    same = _versions(compat.SCHEMA_VERSION, compat.MIN_SCHEMA_VERSION)
    assert (await api.get("/api/flows", headers=same)).status_code == 200
    assert (await api.get("/api/flows")).status_code == 200


async def test_an_unreadable_version_header_is_a_400(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/flows", headers={compat.SCHEMA_HEADER: "two"})
    assert response.status_code == 400 and compat.SCHEMA_HEADER in response.json()["detail"]
