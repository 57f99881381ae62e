"""How a marketer writes an amoCRM source's fields and auth."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from convsync.sources.amocrm.config import AmoCrmSourceConfig, AmoOAuth, AmoTokenAuth


def config(**extra: Any) -> AmoCrmSourceConfig:
    base: dict[str, Any] = {"type": "amocrm", "subdomain": "x", "pipeline_id": 1}
    base.setdefault("auth", {"token": "t0123456789"})
    return AmoCrmSourceConfig.model_validate({**base, **extra})


def test_field_shorthands() -> None:
    fields = config(
        fields={
            "value": "lead.Price", "gclid": "lead.GCLID", "x": "lead.123", "email": "contact.email",
            "c": {"field_code": "UTM_SOURCE"}, "n": {"field_name": "Клик", "entity": "contact"},
        }
    ).fields  # fmt: skip
    assert fields["value"].attribute == "price"
    assert (fields["gclid"].entity, fields["gclid"].field_code) == ("lead", "GCLID")
    assert fields["x"].field_id == 123
    assert (fields["email"].entity, fields["email"].attribute) == ("contact", "email")
    assert fields["c"].field_code == "UTM_SOURCE"
    assert fields["n"].describe() == "contact[Клик]"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("GCLID", "lead.<field> or contact.<field>"),
        ("deal.price", "lead.<field> or contact.<field>"),
        ({"field_id": 1, "field_code": "A"}, "exactly one"),
        ({"attribute": "nope"}, "lead has no attribute 'nope'"),
    ],
)
def test_bad_field_specs_say_how_to_write_them(spec: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        config(fields={"gclid": spec})


def test_auth_is_a_token_or_oauth() -> None:
    assert isinstance(config().auth, AmoTokenAuth)
    oauth = {
        "client_id": "c",
        "client_secret": "s",
        "redirect_uri": "https://e",
        "refresh_token": "r",
    }
    assert isinstance(config(auth=oauth).auth, AmoOAuth)
    with pytest.raises(ValidationError, match="auth must be"):
        config(auth={"password": "x"})
    with pytest.raises(ValidationError, match="less than or equal to 7"):
        config(requests_per_second=10)
