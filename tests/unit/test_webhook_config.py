"""The config of webhook sources and of their server."""

from __future__ import annotations

from pathlib import Path

from tests.unit.test_config import load, problems

GOALS = """\
destinations: {vk: {type: vk_ads, pixel_id: 1}}
goals: {lead: {source: forms, when: WHEN, send: {vk: {goal: x}}}}
"""


def config(source: str, when: str = "{}", top: str = "") -> str:
    return top + f"sources:\n  forms: {source}\n" + GOALS.replace("WHEN", when)


def test_a_tilda_source_needs_only_its_token_and_offers_its_fields(tmp_path: Path) -> None:
    text = config("{type: webhook, sender: tilda, token: '${T}'}", "{form_id: form42}")
    loaded = load(text, tmp_path, {"T": "t0ken"})

    source = loaded.app.sources["forms"]
    assert source.mapping()["email"] == "Email"
    assert source.id_paths() == ("tranid",)
    assert loaded.app.webhooks.port == 8090 and loaded.app.webhooks.max_body == 65536


def test_a_goal_may_not_read_a_field_the_webhook_does_not_map(tmp_path: Path) -> None:
    found = problems(
        config("{type: webhook, token: '${T}'}", "{status: paid}"), tmp_path, {"T": "t"}
    )
    assert any("goals.lead.when.status" in p for p in found), found


def test_bad_webhook_settings_are_named(tmp_path: Path) -> None:
    text = config(
        "{type: webhook, sender: tildaa, token: '${T}', id: 'a..b', fields: {email: 'e mail'}}",
        top="webhooks: {port: 70000, max_body: lots, prot: 1}\n",
    )
    found = "\n".join(problems(text, tmp_path, {"T": "t"}))

    assert "sources.forms.sender" in found and "tilda" in found
    assert "sources.forms.id" in found and "not a field path" in found
    assert "sources.forms.fields: email: 'e mail' is not a field path" in found
    assert "webhooks.port" in found
    assert "webhooks.max_body: 'lots' is not a size" in found
    assert "webhooks.prot" in found and "port" in found


def test_max_body_takes_sizes(tmp_path: Path) -> None:
    text = config("{type: webhook, token: '${T}'}", top="webhooks: {max_body: 1MiB}\n")
    assert load(text, tmp_path, {"T": "t"}).app.webhooks.max_body == 1 << 20


def test_a_literal_token_is_refused(tmp_path: Path) -> None:
    found = problems(config("{type: webhook, sender: tilda, token: literal-secret}"), tmp_path, {})
    assert any("sources.forms.token" in p and "literal" in p for p in found), found
