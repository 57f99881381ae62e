"""``convsync health``: asks the health endpoint of a running ``convsync run``
(``statuspage.endpoint``). The image's HEALTHCHECK asks the same with ``probe.py``, which
skips the CLI's start-up (about 1 s of CPU)."""

from __future__ import annotations

import urllib.error
import urllib.request


def probe(port: int, timeout: float = 3.0) -> tuple[bool, str]:
    """Ask a running ``convsync run`` on this machine whether it is healthy."""
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return True, response.read().decode()
    except urllib.error.HTTPError as exc:
        return False, exc.read().decode() or str(exc)
    except (urllib.error.URLError, OSError) as exc:
        return False, f"no health endpoint at {url}: {exc}"
