"""Friendly flow-run names, `adjective-animal` (`brave-otter`), like the reference system's.

The engine names the runs it creates and the server names those created without a name
(deployment runs, scheduled runs): both draw from here.
"""

from __future__ import annotations

import random

_ADJECTIVES = (
    "amber agile bold brave bright calm clever cosmic crimson curious daring eager electric "
    "fancy fearless gentle golden grumpy happy hidden honest humble jolly keen lively lucky "
    "mellow merry mighty nimble noble olive patient polite proud quick quiet rapid rustic "
    "shiny silent silver smart snappy spry steady sturdy swift tidy vivid warm wise witty zesty"
).split()
_ANIMALS = (
    "albatross alpaca badger beaver bison bobcat camel caribou cheetah cobra condor coyote "
    "crane dingo dolphin eagle falcon ferret finch gazelle gecko gibbon heron hyena ibis jackal "
    "jaguar koala lemur lynx magpie marmot meerkat mole narwhal ocelot okapi otter panda "
    "pelican penguin puffin quail raven salmon seal sloth stork tapir toucan walrus wombat yak"
).split()


def run_name() -> str:
    """A readable name; not unique (runs are told apart by id)."""
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_ANIMALS)}"
