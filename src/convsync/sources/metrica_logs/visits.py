"""Visit rows of the Logs API → one record per configured goal reached in the visit.

``ym:s:goalsID``, ``goalsDateTime``, ``goalsPrice``, ``goalsOrder`` and ``goalsCurrency``
are parallel arrays (one item per goal reach); ``ym:s:purchaseID`` lists the visit's
e-commerce purchases (any of them identifies the visit to Metrica, so the first is
kept). Field reference: Logs API "Визиты" (ru/logs/fields/visits).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal, InvalidOperation

from convsync.core.errors import UserError
from convsync.core.identity import click_ids_from_url
from convsync.core.model import RawRecord, RecordRejection
from convsync.core.parsing import describe_value
from convsync.sources.metrica_logs import tsv

VISIT_ID = "ym:s:visitID"
VISIT_TIME = "ym:s:dateTime"
CLIENT_ID = "ym:s:clientID"
START_URL = "ym:s:startURL"
GOALS = "ym:s:goalsID"
GOAL_TIMES = "ym:s:goalsDateTime"
GOAL_PRICES = "ym:s:goalsPrice"
GOAL_ORDERS = "ym:s:goalsOrder"
GOAL_CURRENCIES = "ym:s:goalsCurrency"
PURCHASES = "ym:s:purchaseID"
#: record field → Logs API field; ``<attribution>`` is filled by the request's model
UTM_FIELDS: dict[str, str] = {
    "utm_source": "ym:s:<attribution>UTMSource",
    "utm_medium": "ym:s:<attribution>UTMMedium",
    "utm_campaign": "ym:s:<attribution>UTMCampaign",
    "utm_content": "ym:s:<attribution>UTMContent",
    "utm_term": "ym:s:<attribution>UTMTerm",
}
#: the fields of every log request, in this order
FIELDS: tuple[str, ...] = (
    VISIT_ID, VISIT_TIME, CLIENT_ID, START_URL, GOALS, GOAL_TIMES, GOAL_PRICES, GOAL_ORDERS,
    GOAL_CURRENCIES, PURCHASES, *UTM_FIELDS.values(),
)  # fmt: skip
#: click ids taken out of the landing URL into fields of their own
_URL_IDS = ("gclid", "gbraid", "wbraid", "yclid", "vk_click_id")
#: a goal reached this long before its visit started means the time zones disagree
_SKEW_SECONDS = 120


@dataclass(frozen=True, slots=True)
class Zones:
    counter: tzinfo  # ym:s:dateTime and the request's dates
    goals: tzinfo  # ym:s:goalsDateTime


class VisitReader:
    """Turns the rows of one part into records; ``early_goals`` counts goal reaches
    timed before their visit's start (a sign that ``goals_timezone`` is wrong)."""

    def __init__(
        self,
        header: str,
        *,
        source: str,
        key: str,
        goal_ids: set[int],
        zones: Zones,
        price_scale: int,
        where: str,
    ) -> None:
        names = header.split("\t")
        index = {name: i for i, name in enumerate(names)}
        self.cols: dict[str, int] = {}
        for position, field in enumerate(FIELDS):
            if field in index:
                self.cols[field] = index[field]
            elif len(names) == len(FIELDS):  # a header that names the model, same order
                self.cols[field] = position
            else:
                raise UserError(
                    f"{key}: a Logs API part has no column {field} (its header: "
                    f"{', '.join(names)[:300]}); report this with the counter's settings"
                )
        self.width = len(names)
        self.source = source
        self.goal_ids = goal_ids
        self.wanted = {str(g) for g in goal_ids}
        self.zones = zones
        self.scale = Decimal(price_scale)
        self.where = where
        self.early_goals = 0
        self.columns = self._columns()

    def read(self, line: str, number: int) -> list[RawRecord | RecordRejection]:
        """The records of one row (most visits reach no configured goal: nothing)."""
        cells = line.split("\t")
        if len(cells) != self.width:
            if not line.strip():
                return []
            return [self._reject(number, None, "bad_row",
                                 f"the row has {len(cells)} cells where the header has "
                                 f"{self.width}")]  # fmt: skip
        goals_cell = cells[self.cols[GOALS]]
        if goals_cell == "[]" or not any(g in goals_cell for g in self.wanted):
            return []
        try:
            goals = tsv.array(goals_cell)
            times = tsv.array(cells[self.cols[GOAL_TIMES]])
        except tsv.BadCell as exc:
            return [
                self._reject(number, GOALS, "bad_row", f"the goal arrays are unreadable: {exc}")
            ]
        hits = [i for i, g in enumerate(goals) if g in self.wanted]
        if not hits:
            return []
        visit_id = tsv.unescape(cells[self.cols[VISIT_ID]]).strip()
        if not visit_id:
            return [self._reject(number, VISIT_ID, "missing_id", "the visit has no ym:s:visitID")]
        base = self._visit_fields(cells, visit_id)
        started = self._visit_start(cells)
        prices = self._optional_array(cells, GOAL_PRICES)
        orders = self._optional_array(cells, GOAL_ORDERS)
        currencies = self._optional_array(cells, GOAL_CURRENCIES)
        out: list[RawRecord | RecordRejection] = []
        seen: set[str] = set()
        for i in hits:
            goal = goals[i]
            origin = f"metrica visit {visit_id} goal {goal}"
            text = times[i] if i < len(times) else ""
            try:
                reached = datetime.fromisoformat(text).replace(tzinfo=self.zones.goals)
            except ValueError:
                out.append(RecordRejection(
                    self.source, origin, GOAL_TIMES, "bad_time",
                    f"the goal time {describe_value(text)} is not a date and time",
                    visit_id,
                ))  # fmt: skip
                continue
            if started is not None and (started - reached).total_seconds() > _SKEW_SECONDS:
                self.early_goals += 1
            record_id = f"{visit_id}:{goal}:{int(reached.timestamp())}"
            if record_id in seen:  # the same goal twice in a second: one conversion
                continue
            seen.add(record_id)
            fields = dict(base)
            columns = dict(self.columns)  # the chunk may be pickled: one dict each
            fields["metrica_goal_id"] = goal
            self._add_goal_values(fields, i, prices, orders, currencies)
            out.append(RawRecord(self.source, record_id, reached.astimezone(self.zones.counter),
                                 fields, origin, columns))  # fmt: skip
        return out

    # --- pieces of a row ----------------------------------------------------------------

    @staticmethod
    def _columns() -> dict[str, str]:
        cols = {
            "metrica_goal_id": GOALS, "metrica_visit_id": VISIT_ID,
            "metrica_client_id": CLIENT_ID, "landing_url": START_URL,
            "purchase_id": PURCHASES, "order_id": GOAL_ORDERS, "value": GOAL_PRICES,
            "currency": GOAL_CURRENCIES, **UTM_FIELDS,
        }  # fmt: skip
        cols.update(dict.fromkeys(_URL_IDS, START_URL))
        return cols

    def _visit_fields(self, cells: list[str], visit_id: str) -> dict[str, str]:
        fields = {"metrica_visit_id": visit_id}
        client = tsv.unescape(cells[self.cols[CLIENT_ID]]).strip()
        if client and client != "0":
            fields["metrica_client_id"] = client
        url = tsv.unescape(cells[self.cols[START_URL]]).strip()
        if url:
            fields["landing_url"] = url
            found = click_ids_from_url(url)
            for name in _URL_IDS:
                if found.get(name):
                    fields[name] = found[name]
        purchases = [p.strip() for p in self._optional_array(cells, PURCHASES) if p.strip()]
        if purchases:
            fields["purchase_id"] = purchases[0]
        for name, column in UTM_FIELDS.items():
            value = tsv.unescape(cells[self.cols[column]]).strip()
            if value:
                fields[name] = value
        return fields

    def _visit_start(self, cells: list[str]) -> datetime | None:
        try:
            naive = datetime.fromisoformat(cells[self.cols[VISIT_TIME]].strip())
        except ValueError:
            return None
        return naive.replace(tzinfo=self.zones.counter)

    def _optional_array(self, cells: list[str], field: str) -> list[str]:
        try:
            return tsv.array(cells[self.cols[field]])
        except tsv.BadCell:
            return []

    def _add_goal_values(
        self,
        fields: dict[str, str],
        i: int,
        prices: list[str],
        orders: list[str],
        currencies: list[str],
    ) -> None:
        price = prices[i].strip() if i < len(prices) else ""
        if price and price not in ("0", "-0"):
            try:
                value = Decimal(price) / self.scale
            except InvalidOperation:
                value = None
            if value is not None and value != 0:
                fields["value"] = _plain(value)
        order = orders[i].strip() if i < len(orders) else ""
        if order:
            fields["order_id"] = order
        currency = currencies[i].strip() if i < len(currencies) else ""
        if currency:
            fields["currency"] = currency

    def _reject(self, number: int, column: str | None, code: str, reason: str) -> RecordRejection:
        return RecordRejection(self.source, f"{self.where} line {number}", column, code, reason)


def _plain(value: Decimal) -> str:
    """``1500.000`` → ``1500``, ``12.5`` → ``12.5`` (no exponent)."""
    return format(value.normalize(), "f")
