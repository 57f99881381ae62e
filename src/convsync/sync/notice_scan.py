"""What ``convsync validate`` learns by reading the sources' data: the notices a sync
would give (:mod:`convsync.sync.notices`), counted exactly over the whole input as it is now.

The data goes through the sources' own ``pull`` and the goal mapper, as in a sync, but
nothing is recorded and no cursor or file manifest is consulted. Only sources whose data
is at hand are read — files (``csv``) and the user's own database (``sql``): API
sources (amoCRM, Bitrix24, HubSpot, Metrica, GA4) need the network and their tokens,
and webhooks have no data until it is sent; their notices come with sync runs.
"""

from __future__ import annotations

from collections import Counter

from convsync.config.models import LoadedConfig
from convsync.core.errors import UserError
from convsync.core.model import SourceState
from convsync.destinations import new_destination
from convsync.sync.goals import GoalMapper
from convsync.sync.mapping import make_source
from convsync.sync.notices import pull_with_notices, render_notices, timezone_unset

#: source types whose data is read by :func:`scan_notices`
SCANNED_TYPES = frozenset({"csv", "sql"})


def scan_notices(loaded: LoadedConfig) -> list[str]:
    """The notice lines (``render_notices``) of the ``csv`` and ``sql`` sources' data. A
    source that cannot be read is left out: its ``check()`` says why."""
    app = loaded.app
    count_phones = app.phone_region is None
    scanned = [
        name
        for name, config in app.sources.items()
        if config.type in SCANNED_TYPES and (count_phones or timezone_unset(app, name))
    ]
    if not scanned:
        return []
    destinations = {name: new_destination(name, cfg) for name, cfg in app.destinations.items()}
    notices: Counter[str] = Counter()
    for name in scanned:
        mapper = GoalMapper(loaded, name, destinations)
        if not mapper.rules:
            continue  # a sync does not read it either
        try:
            for chunk in pull_with_notices(make_source(loaded, name), app, SourceState()):
                notices.update(chunk.notices)
                if count_phones:
                    notices.update(mapper.map(chunk.records).notices)
        except UserError:
            continue
    return render_notices(notices, loaded)
