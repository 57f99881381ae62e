"""The config reference page, rendered from the JSON Schema `convsync config schema`
prints (``convsync.config.loader.config_schema``): every key, its type, default and
description, so the page cannot drift from the models that validate the file."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

Schema = Mapping[str, Any]

#: a model → the hand-written page that explains it (relative to reference/)
EXPLAINED_IN: dict[str, tuple[str, str]] = {
    "CsvSourceConfig": ("../sources/csv.md", "CSV files"),
    "SqlSourceConfig": ("../sources/sql.md", "Your own database"),
    "AmoCrmSourceConfig": ("../sources/amocrm.md", "amoCRM / Kommo"),
    "Bitrix24SourceConfig": ("../sources/bitrix24.md", "Bitrix24"),
    "HubSpotSourceConfig": ("../sources/hubspot.md", "HubSpot"),
    "MetricaLogsSourceConfig": ("../sources/metrica-logs.md", "Yandex.Metrica Logs API"),
    "Ga4BigQuerySourceConfig": ("../sources/ga4-bigquery.md", "GA4 BigQuery export"),
    "WebhookSourceConfig": ("../sources/webhook.md", "Webhooks"),
    "WebhookServerConfig": ("../sources/webhook.md", "Webhooks"),
    "GoogleAdsConfig": ("../destinations/google-ads.md", "Google Ads"),
    "GoogleAdsTarget": ("../destinations/goals.md", "Goals"),
    "MetricaConfig": ("../destinations/yandex-metrica.md", "Yandex.Metrica"),
    "MetricaTarget": ("../destinations/yandex-metrica.md", "Yandex.Metrica"),
    "VkAdsConfig": ("../destinations/vk-ads.md", "VK Ads"),
    "VkAdsTarget": ("../destinations/goals.md", "Goals"),
    "GoalConfig": ("../destinations/goals.md", "Goals"),
    "AlertsConfig": ("../operations/alerts.md", "Alerts"),
    "UiConfig": ("../operations/status-page.md", "The status page"),
    "ScheduleConfig": ("config.md", "The config file"),
    "DeliveryConfig": ("config.md", "The config file"),
    "HealthConfig": ("config.md", "The config file"),
}

#: models that share a config path with others of their kind: what tells them apart
VARIANT: dict[str, str] = {
    "AmoTokenAuth": "a long-lived token",
    "AmoOAuth": "an external integration's OAuth",
    "AmoFieldRef": "a field named explicitly",
    "OAuthRefreshTokenAuth": "OAuth with a refresh token",
    "ServiceAccountAuth": "a service account key",
    "ApplicationDefaultAuth": "application default credentials",
    "GoogleAdsTarget": "of a `google_ads` destination",
    "MetricaTarget": "of a `yandex_metrica` destination",
    "VkAdsTarget": "of a `vk_ads` destination",
    "NotCondition": "`{not: …}`",
}

_ISO_DURATION = re.compile(
    r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


def render(schema: Schema) -> str:
    """The whole page, Markdown."""
    defs: Mapping[str, Schema] = schema.get("$defs", {})
    out = [
        "# Config keys",
        "",
        "Every key the config file accepts, generated when this site is built from the JSON",
        "Schema that `convsync config schema` prints — the same models `convsync validate`",
        "checks a file against, so this page cannot drift from the code. What the keys mean in",
        "practice is on the pages each section links to; the file's format (secrets,",
        "durations, limits) is on [The config file](config.md).",
        "",
        "Conventions: **required** keys have no default; *duration* is `30s`, `15m`, `6h`,",
        "`7d`, `2w` (or seconds); *secret* must be written as `${ENV_VAR}` or",
        "`${file:/run/secrets/name}`, never as a literal. Names in `<angle brackets>` are",
        "yours (a source, destination or goal name).",
        "",
        "## Top level {#top-level}",
        "",
    ]
    out += _table(schema, defs)
    for name, path in _reached(schema, defs):
        out += ["", *_section(name, path, defs[name], defs)]
    return "\n".join(out) + "\n"


def _reached(schema: Schema, defs: Mapping[str, Schema]) -> list[tuple[str, str]]:
    """Every model, in the order a reader meets it from the top, with the first config
    path that leads to it."""
    seen: dict[str, str] = {}

    def visit(node: Any, path: str) -> None:
        if isinstance(node, Mapping):
            ref = node.get("$ref")
            if isinstance(ref, str):
                name = ref.rsplit("/", 1)[-1]
                if name not in seen:
                    seen[name] = path
                    visit(defs.get(name, {}), path)
                return
            for key, sub in (node.get("properties") or {}).items():
                visit(sub, f"{path}.{key}" if path else key)
            extra = node.get("additionalProperties")
            if isinstance(extra, Mapping):
                visit(extra, f"{path}.<{_item_word(path)}>")
            for key in ("anyOf", "oneOf", "allOf"):
                for sub in node.get(key) or ():
                    visit(sub, path)
            if isinstance(node.get("items"), Mapping):
                visit(node["items"], f"{path}[]")

    visit(schema, "")
    return list(seen.items())


def _item_word(path: str) -> str:
    last = path.rsplit(".", 1)[-1]
    return {
        "sources": "source",
        "destinations": "destination",
        "goals": "goal",
        "send": "destination",
        "channels": "channel",
        "fields": "field",
        "when": "field",
        "retract_when": "field",
    }.get(last, "name")


def _section(name: str, path: str, model: Schema, defs: Mapping[str, Schema]) -> list[str]:
    kind = _const_type(model)
    title = f"`{path}`" + (f" with `type: {kind}`" if kind else "")
    if name in VARIANT:
        title += f": {VARIANT[name]}"
    out = [f"## {title} {{#{name.lower()}}}", ""]
    description = _clean(model.get("description", ""))
    if description:
        out += [description, ""]
    if name in EXPLAINED_IN:
        page, label = EXPLAINED_IN[name]
        out += [f"Explained in [{label}]({page}).", ""]
    if "properties" in model:
        out += _table(model, defs)
    else:
        out += [f"Type: {_type(model, defs)}."]
    return out


def _table(model: Schema, defs: Mapping[str, Schema]) -> list[str]:
    required = set(model.get("required") or ())
    rows = ["| Key | Type | Default | Meaning |", "|---|---|---|---|"]
    for key, prop in (model.get("properties") or {}).items():
        if key == "type" and "const" in prop:
            rows.append(f"| `type` | `{prop['const']}` | **required** | The kind of this entry. |")
            continue
        default = "**required**" if key in required else _default(prop)
        meaning = _cell(_clean(prop.get("description") or _described(prop, defs)))
        rows.append(f"| `{key}` | {_cell(_type(prop, defs))} | {default} | {meaning} |")
    return rows


def _described(prop: Schema, defs: Mapping[str, Schema]) -> str:
    """A key without a description of its own: its model's, when it has one model."""
    refs = [o for o in [prop, *(prop.get("anyOf") or ())] if "$ref" in o]
    if len(refs) != 1:
        return ""
    return str(defs.get(str(refs[0]["$ref"]).rsplit("/", 1)[-1], {}).get("description", ""))


def _type(node: Schema, defs: Mapping[str, Schema]) -> str:
    if "$ref" in node:
        name = str(node["$ref"]).rsplit("/", 1)[-1]
        kind = _const_type(defs.get(name, {}))
        label = f"`{kind}`" if kind else _model_word(name)
        return f"[{label}](#{name.lower()})"
    options = node.get("anyOf") or node.get("oneOf")
    if options:
        kinds = [_type(o, defs) for o in options if o.get("type") != "null"]
        return " or ".join(dict.fromkeys(kinds))
    if "const" in node:
        return f"`{node['const']}`"
    if "enum" in node:
        return "one of " + ", ".join(f"`{v}`" for v in node["enum"])
    kind = node.get("type")
    fmt = node.get("format")
    if kind == "string":
        word = {
            "duration": "duration",
            "password": "secret",
            "date": "date (`2026-01-01`)",
            "date-time": "date and time",
        }.get(str(fmt), "text")
    elif kind == "integer":
        word = "whole number"
    elif kind == "number":
        word = "number"
    elif kind == "boolean":
        word = "`true` or `false`"
    elif kind == "array":
        items = node.get("items") or {}
        word = f"list of {_type(items, defs)}" if items else "list"
        if node.get("minItems"):
            word += f" (at least {node['minItems']})"
    elif kind == "object":
        extra = node.get("additionalProperties")
        keys = node.get("propertyNames", {}).get("enum")
        what = "name" if not keys else "one of " + ", ".join(f"`{k}`" for k in keys)
        word = f"map: {what} → {_type(extra, defs)}" if isinstance(extra, Mapping) else "map"
    else:
        word = "any"
    return word + _range(node)


def _model_word(name: str) -> str:
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name.removesuffix("Config")).lower()
    return words.replace("oauth", "OAuth").replace("ui", "UI")


def _range(node: Schema) -> str:
    low = node.get("minimum", node.get("ge"))
    high = node.get("maximum", node.get("le"))
    above = node.get("exclusiveMinimum", node.get("gt"))
    huge = 2**63 - 1
    parts = []
    if low is not None:
        parts.append(f"≥ {low}")
    if above is not None:
        parts.append(f"> {above}")
    if high is not None and high != huge:
        parts.append(f"≤ {high}")
    return f", {' and '.join(parts)}" if parts else ""


def _const_type(model: Schema) -> str | None:
    kind = (model.get("properties") or {}).get("type", {})
    return kind.get("const") if isinstance(kind, Mapping) else None


def _default(prop: Schema) -> str:
    if "default" not in prop:
        return "—"
    value = prop["default"]
    if value is None or value == {} or value == []:
        return "—"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f"`{duration(value)}`" if _is_duration(prop) else f"`{value}`" if value else '`""`'
    if isinstance(value, dict | list):
        return "see below" if isinstance(value, dict) else f"`{value}`"
    return f"`{value}`"


def _is_duration(prop: Schema) -> bool:
    if prop.get("format") == "duration":
        return True
    return any(o.get("format") == "duration" for o in prop.get("anyOf") or ())


def duration(iso: str) -> str:
    """An ISO 8601 duration as convsync's config writes it: ``PT15M`` → ``15m``."""
    match = _ISO_DURATION.match(iso)
    if not match:
        return iso
    seconds = (
        int(match["d"] or 0) * 86400
        + int(match["h"] or 0) * 3600
        + int(match["m"] or 0) * 60
        + float(match["s"] or 0)
    )
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return "0" if not seconds else f"{seconds:g}s"


def _clean(text: str) -> str:
    """A model's docstring as Markdown: RST literals to code spans, one paragraph."""
    text = re.sub(r"``(.+?)``", r"`\1`", text)
    return " ".join(text.split())


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def keys_of(schema: Schema) -> Iterator[tuple[str, str]]:
    """(model, key) of every property the schema defines: what the page must list."""
    for key in schema.get("properties") or {}:
        yield "", key
    for name, model in (schema.get("$defs") or {}).items():
        for key in model.get("properties") or {}:
            yield name, key
