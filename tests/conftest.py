"""The test suite's plugins: the fake Google Ads API's fixtures (``google_ads_fake``,
``google_ads_config``, ``google_ads_destination``) for any test that asks for them."""

pytest_plugins = ["tests.google_ads_fake.fixtures"]
