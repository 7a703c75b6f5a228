"""Event contracts: the payload of every event a service publishes, one module per producing service, and the codes
(funds, statuses, case classes) those payloads carry (``codes``).

A service imports another service only through this package: the producer builds its payloads from these models and
every consumer parses them with the same models. Producers are strict (a payload built with an unknown field fails
in the producer); consumers are lenient (``EventEnvelope.payload`` drops fields it does not know, so a field added
by a newer producer during a rolling deploy does not dead-letter the event). Compatibility of each type with its
committed JSON schema snapshot (``snapshots/``) is checked by ``services.contracts.compat``; the catalogue of types,
producers and consumers is rendered into docs/events.md by ``sifund docs events``.
"""

import importlib
from types import ModuleType

# Producing service -> its contract module. The accounts service also publishes the partner departments' facts it
# receives (stream EXCHANGE), so ``accounts`` holds the ``exchange.*`` types too.
PRODUCERS: tuple[str, ...] = ("accounts", "collection", "benefits", "oversight")


def modules() -> list[ModuleType]:
    """Every contract module, imported (which registers its types in ``services.kernel.events.EVENT_TYPES``)."""
    return [importlib.import_module(f"services.contracts.{name}") for name in PRODUCERS]
