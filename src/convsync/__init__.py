"""convsync: conversions from CRMs and exports to Google Ads, Yandex.Metrica and VK Ads."""


def package_version() -> str:
    """The installed version, or ``unknown`` in a source tree that is not installed."""
    # importlib.metadata costs ~30 ms at import: loaded by the few commands that ask
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("convsync")
    except PackageNotFoundError:
        return "unknown"
