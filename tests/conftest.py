"""The test suite's plugins and shared set-up.

- The fake Google Ads API's fixtures (``google_ads_fake``, ``google_ads_config``,
  ``google_ads_destination``) for any test that asks for them.
- The shared contracts are not test modules, so pytest would not rewrite their asserts
  on its own (their failures would say only "AssertionError"); they are registered here,
  once, before any test package imports them.
"""

import pytest

pytest.register_assert_rewrite("tests.unit.sources.contract", "tests.unit.destinations.contract")

pytest_plugins = ["tests.google_ads_fake.fixtures", "tests.datamanager_fake.fixtures"]
