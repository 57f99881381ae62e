from __future__ import annotations

import pytest

# The shared contract is not a test module, so pytest would not rewrite its asserts on
# its own; without this its failures would say only "AssertionError".
pytest.register_assert_rewrite(__name__.rpartition(".")[0] + ".contract")
