"""The Metrica offline-conversions API of one counter, over ``requests``.

Three calls (reference/yandex-metrica.md §1, §5):

- ``POST …/offline_conversions/upload?comment=…[&type=CALLS]`` with the CSV as the
  multipart field ``file`` → ``{"uploading": {…}}``;
- ``GET …/offline_conversions/uploading/{id}`` → ``{"uploading": {…}}``;
- ``GET …/offline_conversions/uploadings?limit=…&offset=…`` → ``{"uploadings": […]}``.

Every failure leaves this module as a convsync error (``classify``); the OAuth token is
only ever in the ``Authorization`` header and is scrubbed from any text shown.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import requests
from pydantic import BaseModel, ConfigDict, ValidationError
from urllib3.exceptions import NewConnectionError

from convsync.core import network
from convsync.core.errors import DestinationUnavailable, TransientError
from convsync.destinations.yandex_metrica.classify import (
    UploadMaybeStored,
    parse_error,
    scrub,
    to_exception,
)
from convsync.destinations.yandex_metrica.config import MetricaConfig

#: uploadings asked for per page of the list (the API's default and maximum)
PAGE = 10_000
#: codes of a request that failed in the network (its message is ``network.describe``'s)
NETWORK_CODES = frozenset({"connect_timeout", "connection_error", "request_failed"})
#: pages of the list read when looking for a comment: the newest uploads come first
#: in practice, and an interrupted batch is found within hours of being sent
MAX_PAGES = 5


class Uploading(BaseModel):
    """One upload as Metrica describes it (``OfflineConversionUploading``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: int
    status: str
    comment: str | None = None
    type: str = "BASIC"
    source_quantity: int | None = None
    line_quantity: int | None = None
    linked_quantity: int | None = None
    user_not_found_quantity: int | None = None
    goal_not_found_quantity: int | None = None

    def counts(self) -> dict[str, int]:
        """The ``*_quantity`` figures Metrica gave, by their API names."""
        return {
            name: value
            for name, value in self.model_dump().items()
            if name.endswith("_quantity") and isinstance(value, int)
        }


class MetricaClient:
    """The API calls of one counter; ``requests`` counts the requests made (for figures)."""

    def __init__(
        self,
        destination: str,
        config: MetricaConfig,
        session: requests.Session,
        clock: Callable[[], datetime],
    ) -> None:
        self.destination = destination
        self.counter_id = config.counter_id
        self.base = (
            f"{config.api_base_url.rstrip('/')}/management/v1/counter/{config.counter_id}"
            "/offline_conversions"
        )
        self.session = session
        self.clock = clock
        self.address = network.Address(
            "Metrica API",
            config.api_base_url,
            f"destinations.{destination}.api_base_url",
            getattr(session, "timeout", None),
        )
        self._secrets = (config.token.get_secret_value(),)
        session.headers["Authorization"] = f"OAuth {config.token.get_secret_value()}"
        self.requests = 0

    def upload(self, data: bytes, *, comment: str, calls: bool) -> Uploading:
        params = {"comment": comment, **({"type": "CALLS"} if calls else {})}
        files = {"file": ("data.csv", data, "text/csv")}
        body = self._call("POST", "/upload", maybe_stored=True, params=params, files=files)
        return self._uploading(body.get("uploading"), maybe_stored=True)

    def uploading(self, upload_id: str) -> Uploading | None:
        """The upload, or None if Metrica does not know it (404)."""
        body = self._call("GET", f"/uploading/{upload_id}", missing_ok=True)
        return None if body is None else self._uploading(body.get("uploading"))

    def uploadings(self, pages: int = MAX_PAGES) -> list[Uploading]:
        """The counter's uploads, up to ``pages`` pages of the list."""
        found: list[Uploading] = []
        for page in range(pages):
            params = {"limit": PAGE, "offset": page * PAGE}
            body = self._call("GET", "/uploadings", params=params)
            items = body.get("uploadings")
            if not isinstance(items, list):
                raise TransientError(
                    "Metrica's list of uploads has no 'uploadings'", code="bad_response"
                )
            found += [self._uploading(item) for item in items]
            if len(items) < PAGE:
                break
        return found

    def check_access(self) -> None:
        """One cheap call that fails like an upload would on a bad token or counter."""
        self._call("GET", "/uploadings", params={"limit": 1, "offset": 0})

    def close(self) -> None:
        self.session.close()

    def _call(
        self,
        method: str,
        path: str,
        *,
        maybe_stored: bool = False,
        missing_ok: bool = False,
        **kwargs: Any,
    ) -> Any:
        self.requests += 1
        try:
            response = self.session.request(method, self.base + path, **kwargs)
        except requests.exceptions.ConnectTimeout as exc:
            raise TransientError(self._unreached(exc), code="connect_timeout") from None
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                requests.exceptions.InvalidSchema) as exc:  # fmt: skip
            raise DestinationUnavailable(
                "invalid_api_base_url",
                f"api_base_url of destinations.{self.destination} is not a usable address "
                f"({self._shown(exc)}).",
            ) from None
        except requests.exceptions.ConnectionError as exc:
            reason = getattr(exc.args[0], "reason", None) if exc.args else None
            # refused or unresolvable: the request never left; anything else may have
            unsent = isinstance(reason, NewConnectionError)
            error = UploadMaybeStored if maybe_stored and not unsent else TransientError
            raise error(self._unreached(exc), code="connection_error") from None
        except requests.exceptions.RequestException as exc:  # read timeouts and the rest
            error = UploadMaybeStored if maybe_stored else TransientError
            raise error(self._unreached(exc), code="request_failed") from None
        if response.status_code == 404 and missing_ok:
            return None
        if response.status_code != 200:
            now = self.clock()
            problem = parse_error(
                response.status_code, response.content, response.headers, now, self._secrets
            )
            refused = to_exception(
                problem, destination=self.destination, counter_id=self.counter_id, now=now
            )
            if maybe_stored and isinstance(refused, TransientError) and response.status_code >= 500:
                # a gateway timing out may still have handed the file on
                raise UploadMaybeStored(
                    str(refused), retry_after=refused.retry_after, code=refused.code
                )
            raise refused
        try:
            return response.json()
        except ValueError:
            error = UploadMaybeStored if maybe_stored else TransientError
            raise error(
                "Metrica answered 200 with a body that is not JSON", code="bad_response"
            ) from None

    def _uploading(self, data: Any, *, maybe_stored: bool = False) -> Uploading:
        try:
            return Uploading.model_validate(data)
        except ValidationError:
            error = UploadMaybeStored if maybe_stored else TransientError
            raise error(
                "Metrica answered without a readable 'uploading' (id and status)",
                code="bad_response",
            ) from None

    def _unreached(self, exc: requests.exceptions.RequestException) -> str:
        """One line of what happened in the network (no library text: it holds URLs)."""
        return network.describe(exc, self.address)

    def _shown(self, exc: BaseException) -> str:
        text = scrub(str(exc), self._secrets)
        return text if len(text) <= 200 else text[:199] + "…"
