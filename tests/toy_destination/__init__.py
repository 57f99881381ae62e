"""A toy destination type, as a new platform would be added: this package and one line
in ``convsync.destinations.DESTINATION_TYPES`` (see ``tests/unit/test_registry.py``)."""
