"""The field mapping of an ``amocrm`` source, resolved against the account.

Custom fields are named in the config by id, code or name; once per pull the account's
field lists (``/api/v4/leads/custom_fields``, ``/api/v4/contacts/custom_fields``) turn
each into a field id — a code or name that does not exist is a config error naming the
key, not an empty column — and then each record reads its fields by id.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from convsync.core.errors import UserError
from convsync.sources.amocrm.client import AmoClient
from convsync.sources.amocrm.config import AmoCrmSourceConfig, AmoFieldRef

#: contact attributes that are the contact's standard multi-value fields
_CONTACT_CODES = {"email": "EMAIL", "phone": "PHONE"}
_SHOWN = 30

Entity = Mapping[str, Any]
Getter = Callable[[Entity, Entity | None], str | None]


def custom_value(entity: Entity, field_id: int | None, code: str | None = None) -> str | None:
    """The first non-empty value of a custom field of ``entity``, as text."""
    for item in entity.get("custom_fields_values") or ():
        if field_id is not None and item.get("field_id") != field_id:
            continue
        if code is not None and item.get("field_code") != code:
            continue
        for value in item.get("values") or ():
            raw = value.get("value") if isinstance(value, Mapping) else None
            text = "" if raw is None else str(raw).strip()
            if text:
                return text
    return None


def _attribute(entity: Entity, name: str) -> str | None:
    raw = entity.get(name)
    text = "" if raw is None else str(raw).strip()
    return text or None


@dataclass(frozen=True, slots=True)
class FieldPlan:
    """canonical name → (what the user wrote, how to read it from lead and contact)."""

    getters: tuple[tuple[str, str, Getter], ...]
    columns: dict[str, str]
    needs_contacts: bool


def _won_status(config: AmoCrmSourceConfig) -> Getter:
    pid, sid = config.pipeline_id, config.won_status_id

    def read(lead: Entity, contact: Entity | None) -> str:
        still = lead.get("status_id") == sid and lead.get("pipeline_id") == pid
        return "won" if still else "moved_after_won"

    return read


def _getter(ref: AmoFieldRef, field_id: int | None, config: AmoCrmSourceConfig) -> Getter:
    on_contact = ref.entity == "contact"
    if ref.attribute is not None:
        name = ref.attribute
        if name == "status" and not on_contact:
            return _won_status(config)
        code = _CONTACT_CODES.get(name) if on_contact else None
        if code is not None:
            return lambda lead, contact: custom_value(contact, None, code) if contact else None
        if on_contact:
            return lambda lead, contact: _attribute(contact, name) if contact else None
        return lambda lead, contact: _attribute(lead, name)
    if on_contact:
        return lambda lead, contact: custom_value(contact, field_id) if contact else None
    return lambda lead, contact: custom_value(lead, field_id)


def resolve_fields(client: AmoClient, source: str, config: AmoCrmSourceConfig) -> FieldPlan:
    """The plan for this pull; asks the account only for lists the mapping needs."""
    refs = dict(config.fields)
    refs.setdefault("value", AmoFieldRef(entity="lead", attribute="price"))
    refs.setdefault("status", AmoFieldRef(entity="lead", attribute="status"))
    lists: dict[str, list[dict[str, Any]]] = {}
    getters: list[tuple[str, str, Getter]] = []
    problems: list[str] = []
    for canonical, ref in refs.items():
        field_id: int | None = None
        if ref.attribute is None:
            entity = f"{ref.entity}s"
            if entity not in lists:
                lists[entity] = [
                    item
                    for page in client.pages(
                        f"/api/v4/{entity}/custom_fields", [("limit", 250)], "custom_fields"
                    )
                    for item in page
                ]
            field_id = _find(lists[entity], ref)
            if field_id is None:
                problems.append(_unknown(source, canonical, ref, lists[entity]))
                continue
        getters.append((canonical, ref.describe(), _getter(ref, field_id, config)))
    if problems:
        raise UserError("\n".join(problems))
    return FieldPlan(
        getters=tuple(getters),
        columns={canonical: column for canonical, column, _ in getters},
        needs_contacts=any(ref.entity == "contact" for ref in refs.values()),
    )


def _find(fields: list[dict[str, Any]], ref: AmoFieldRef) -> int | None:
    for item in fields:
        if ref.field_id is not None and item.get("id") == ref.field_id:
            return ref.field_id
        if ref.field_code is not None and str(item.get("code") or "") == ref.field_code:
            return int(item["id"])
    if ref.field_code is not None:  # codes are upper case; forgive the case of a hand-typed one
        wanted = ref.field_code.casefold()
        hits = [item for item in fields if str(item.get("code") or "").casefold() == wanted]
        if len(hits) == 1:
            return int(hits[0]["id"])
    if ref.field_name is not None:
        wanted = " ".join(ref.field_name.split()).casefold()
        hits = [
            item
            for item in fields
            if " ".join(str(item.get("name") or "").split()).casefold() == wanted
        ]
        if len(hits) == 1:
            return int(hits[0]["id"])
    return None


def _unknown(source: str, canonical: str, ref: AmoFieldRef, fields: list[dict[str, Any]]) -> str:
    shown = ", ".join(
        f"{item.get('id')} {item.get('code') or '-'} {item.get('name')!r}"
        for item in fields[:_SHOWN]
    )
    if len(fields) > _SHOWN:
        shown += f", … ({len(fields)} in all)"
    return (
        f"sources.{source}.fields.{canonical}: the account has no {ref.entity} custom field "
        f"{ref.describe()} (or several with that name). Its {ref.entity} fields "
        f"(id code name): {shown or '(none)'}"
    )
