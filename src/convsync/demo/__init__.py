"""The demo's material: the example config (``example.yaml``, linked from the repository's
``config/``), its sample exports (``sample/``, dated on the way out by ``samples.py``) and
what the demo is meant to show (``outcome.py``). ``convsync demo`` itself is
``cli/demo.py``."""
