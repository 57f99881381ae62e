"""The destinations' config and target models: what users write in the config file."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from convsync.destinations.google_ads.config import GoogleAdsConfig, GoogleAdsTarget
from convsync.destinations.vk_ads.config import VkAdsConfig, VkAdsTarget
from convsync.destinations.yandex_metrica.config import MetricaConfig, MetricaTarget


@pytest.mark.parametrize("given", ["123-456-7890", "1234567890", " 123-456-7890 ", 1234567890])
def test_google_customer_id_with_or_without_dashes(given: Any) -> None:
    config = GoogleAdsConfig(type="google_ads", customer_id=given, login_customer_id=given)
    assert config.customer_id == "1234567890"
    assert config.login_customer_id == "1234567890"


@pytest.mark.parametrize("given", ["123-456-789", "12345678901", "123-456-789O", "١٢٣٤٥٦٧٨٩٠", ""])
def test_google_customer_id_must_be_ten_digits(given: Any) -> None:
    with pytest.raises(ValidationError, match="not a Google Ads customer id"):
        GoogleAdsConfig(type="google_ads", customer_id=given)


@pytest.mark.parametrize(
    ("given", "action"),
    [
        (987654321, 987654321),
        ("987654321", 987654321),
        (" customers/1234567890/conversionActions/987654321 ", 987654321),
    ],
)
def test_google_conversion_action_as_id_or_resource_name(given: Any, action: int) -> None:
    target = GoogleAdsTarget(conversion_action=given)
    assert target.conversion_action == action
    assert target.enhanced_for_leads is False


@pytest.mark.parametrize(
    "given",
    [
        0,
        -5,
        True,
        "abc",
        "²",
        "customers/1234567890/conversionActions/0",
        "customers/1234567890/conversionActions/12/extra",
        "conversionActions/12",
    ],
)
def test_google_conversion_action_rejects_what_is_not_an_id(given: Any) -> None:
    with pytest.raises(ValidationError, match="not a conversion action id"):
        GoogleAdsTarget(conversion_action=given)


def test_google_config_forbids_unknown_keys_and_hides_secrets() -> None:
    with pytest.raises(ValidationError, match="customer_idd"):
        GoogleAdsConfig.model_validate(
            {"type": "google_ads", "customer_id": "123-456-7890", "customer_idd": "x"}
        )
    config = GoogleAdsConfig.model_validate(
        {
            "type": "google_ads",
            "customer_id": "123-456-7890",
            "auth": {"client_id": "id", "client_secret": "s3cr3t", "refresh_token": "r3fr3sh"},
        }
    )
    assert "s3cr3t" not in repr(config)
    assert "r3fr3sh" not in repr(config)


@pytest.mark.parametrize("target", ["offline_purchase", " paid-order ", "заказ_оплачен", "a+b"])
def test_metrica_target_accepts_goal_identifiers(target: str) -> None:
    assert MetricaTarget(target=target).target == target.strip()


@pytest.mark.parametrize("bad", ["/", "\\", "&", "#", "?", "=", '"', " ", "\t", "\x00"])
def test_metrica_target_rejects_each_forbidden_character(bad: str) -> None:
    with pytest.raises(ValidationError, match="cannot contain"):
        MetricaTarget(target=f"goal{bad}id")


def test_metrica_target_must_not_be_empty() -> None:
    with pytest.raises(ValidationError, match="empty"):
        MetricaTarget(target="  ")


def test_metrica_counter_id_must_be_positive() -> None:
    assert MetricaConfig(type="yandex_metrica", counter_id="12345678", token="t").counter_id == (
        12345678
    )
    with pytest.raises(ValidationError):
        MetricaConfig(type="yandex_metrica", counter_id=0, token="t")


@pytest.mark.parametrize("goal", ["purchase", "lead_form-2", "Покупка"])
def test_vk_goal_accepts_plain_names(goal: str) -> None:
    assert VkAdsTarget(goal=goal).goal == goal


@pytest.mark.parametrize("bad", [";", "/", "&", "?", "#", "=", "%", " ", "\n"])
def test_vk_goal_rejects_characters_the_tracker_url_cannot_carry(bad: str) -> None:
    with pytest.raises(ValidationError, match="tracker URL cannot carry"):
        VkAdsTarget(goal=f"buy{bad}now")


def test_vk_max_event_age() -> None:
    assert VkAdsConfig(type="vk_ads", pixel_id=1).max_event_age == timedelta(days=30)
    assert VkAdsConfig(type="vk_ads", pixel_id=1, max_event_age="7d").max_event_age == (
        timedelta(days=7)
    )
    with pytest.raises(ValidationError, match="longer than zero"):
        VkAdsConfig(type="vk_ads", pixel_id=1, max_event_age="0s")


@pytest.mark.parametrize("package", ["google_ads", "yandex_metrica", "vk_ads"])
def test_loading_a_config_does_not_load_the_destination(package: str) -> None:
    # A fresh interpreter: this test process has long imported every destination.
    code = (
        f"import sys, convsync.destinations.{package}.config\n"
        f"print('convsync.destinations.{package}.destination' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
