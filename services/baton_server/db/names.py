"""Readable generated run names, e.g. `brave-otter`."""

from __future__ import annotations

import secrets

_ADJECTIVES = (
    "amber brave calm daring eager fancy gentle happy icy jolly keen lively merry nimble "
    "odd proud quick rapid shy tidy upbeat vivid witty young zesty bold crisp dusky"
).split()
_ANIMALS = (
    "otter badger crane dingo eagle ferret gecko heron ibis jackal koala lemur marten newt "
    "ocelot panda quail raven stoat tapir urchin vole walrus yak zebra bison camel"
).split()


def run_name() -> str:
    return f"{secrets.choice(_ADJECTIVES)}-{secrets.choice(_ANIMALS)}"
