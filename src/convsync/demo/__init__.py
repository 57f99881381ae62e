"""``convsync demo``: the example config (``example.yaml``, linked from the repository's
``config/``) dry-run over its sample exports (``sample/``) with their dates moved so the
newest is yesterday, then checked against what the demo is meant to show."""
