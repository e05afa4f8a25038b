"""`baton webhook create | ls | inspect | delete`: URLs that turn any request into an event."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from . import _api
from ._events import _client

app = typer.Typer(no_args_is_help=True, help="Webhooks: a URL that turns any request into an event.")

Name = Annotated[str, typer.Argument(metavar="NAME", help="The webhook's name.", show_default=False)]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _url(api_url: str, slug: str) -> str:
    base = api_url.rstrip("/")
    base = base[: -len("/api")] if base.endswith("/api") else base
    return f"{base}/hooks/{slug}"


def _secret(variable: str, option: str) -> str:
    value = os.environ.get(variable)
    if not value:
        raise typer.BadParameter(f"the environment variable {variable} is not set", param_hint=option)
    return value


@app.command("create")
def create(
    name: Name,
    template: Annotated[
        Path, typer.Option("--template", "-t", help="Jinja2 template file rendering the event.")
    ],
    slug: Annotated[str | None, typer.Option(help="The URL's last part (random if unset).")] = None,
    hmac_secret_env: Annotated[
        str | None, typer.Option(help="Check an HMAC-SHA256 signature with the secret in this env variable.")
    ] = None,
    signature_style: Annotated[str, typer.Option(help="github or stripe.")] = "github",
    signature_header: Annotated[
        str | None, typer.Option(help="Where the signature is (the style's default).")
    ] = None,
    token_env: Annotated[
        str | None, typer.Option(help="Check a shared token, taken from this env variable.")
    ] = None,
    token_header: Annotated[str, typer.Option(help="Where the token is.")] = "X-Baton-Token",
    description: Annotated[str | None, typer.Option(help="What it is for.")] = None,
) -> None:
    """Create a webhook; prints its URL."""
    try:
        text = template.read_text()
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {template}: {exc.strerror}", param_hint="--template") from None
    if hmac_secret_env and token_env:
        raise typer.BadParameter("choose --hmac-secret-env or --token-env, not both")
    body: dict[str, Any] = {"name": name, "template": text, "description": description}
    if slug:
        body["slug"] = slug
    if hmac_secret_env:
        body["check"] = {
            "kind": "hmac",
            "secret": _secret(hmac_secret_env, "--hmac-secret-env"),
            "style": signature_style,
            "header": signature_header,
        }
    elif token_env:
        body["check"] = {"kind": "token", "token": _secret(token_env, "--token-env"), "header": token_header}
    with _client() as client:
        webhook = client.create_webhook(body)
        url = _url(client.api_url, webhook["slug"])
    _api.console().print(f"Created webhook {webhook['name']!r}: POST {url}", soft_wrap=True)


@app.command("ls")
def list_webhooks(as_json: AsJson = False) -> None:
    """List the webhooks."""
    with _client() as client:
        webhooks = client.list_webhooks()
        api_url = client.api_url
    if as_json:
        _api.print_json(webhooks)
        return
    table = _api.table("Name", "Check", "Enabled", "URL")
    for webhook in webhooks:
        check = webhook["check"] or "-"
        if webhook["check"] == "hmac":
            check = f"hmac ({webhook['signature_style']})"
        table.add_row(
            webhook["name"], check, "yes" if webhook["enabled"] else "no", _url(api_url, webhook["slug"])
        )
    _api.console().print(table)


@app.command("inspect")
def inspect_webhook(name: Name, as_json: AsJson = False) -> None:
    """A webhook with its template (never its secret)."""
    with _client() as client:
        webhook = client.read_webhook(name)
        api_url = client.api_url
    if as_json:
        _api.print_json(webhook)
        return
    out = _api.console()
    out.print(f"Webhook {webhook['name']}  ({webhook['id']})")
    out.print(f"  url:     POST {_url(api_url, webhook['slug'])}", soft_wrap=True)
    check = webhook["check"] or "none (the slug is the only secret)"
    if webhook["check"]:
        check = f"{check} in {webhook['check_header']}"
        if webhook["check"] == "hmac":
            check += f" ({webhook['signature_style']} style)"
    out.print(f"  check:   {check}")
    out.print(f"  enabled: {'yes' if webhook['enabled'] else 'no'}")
    if webhook.get("description"):
        out.print(f"  about:   {webhook['description']}")
    out.print("Template:")
    out.print(webhook["template"], soft_wrap=True)


@app.command("delete")
def delete(name: Name, yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False) -> None:
    """Delete a webhook: its URL stops working."""
    if not yes:
        typer.confirm(f"Delete webhook {name!r}?", abort=True)
    with _client() as client:
        client.delete_webhook(name)
    _api.console().print(f"Deleted webhook {name!r}.")
