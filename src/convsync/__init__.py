"""convsync: conversions from CRMs and exports to Google Ads, Yandex.Metrica and VK Ads."""

from importlib.metadata import PackageNotFoundError, version


def package_version() -> str:
    """The installed version, or ``unknown`` in a source tree that is not installed."""
    try:
        return version("convsync")
    except PackageNotFoundError:
        return "unknown"
