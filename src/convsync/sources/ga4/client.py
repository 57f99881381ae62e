"""The BigQuery calls of this source, through the official ``google-cloud-bigquery``.

- ``tables.list`` — which ``events_YYYYMMDD`` / ``events_intraday_YYYYMMDD`` exist;
- ``jobs.insert`` with ``dryRun`` — the byte estimate, logged before every query;
- ``jobs.insert``, ``jobs.get``, ``jobs.getQueryResults`` (paged) — the query itself,
  with ``maximumBytesBilled`` set on the job.

Every failure leaves this module as a ``UserError`` (``_classified``) that names the
config key to fix: 401/403 the credentials and the roles, 404 the dataset,
``bytesBilledLimitExceeded`` the limit. Transient errors (5xx, ``rateLimitExceeded``,
connection resets) are retried by the client library itself, bounded by
``query_timeout``; past that the message says the next run tries again.
"""

from __future__ import annotations

import concurrent.futures
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import google.auth
import requests
import structlog
from google.api_core import exceptions as api_exceptions
from google.api_core.client_options import ClientOptions
from google.auth import exceptions as auth_exceptions
from google.auth.credentials import Credentials
from google.cloud import bigquery
from google.oauth2 import service_account

from convsync.core import network
from convsync.core.errors import UserError
from convsync.sources.ga4.config import Ga4BigQuerySourceConfig
from convsync.sources.ga4.query import DAILY_PREFIX, INTRADAY_PREFIX

log = structlog.get_logger("convsync.sources.ga4")

SCOPES = ("https://www.googleapis.com/auth/bigquery",)
ROLES = "BigQuery Data Viewer on the dataset and BigQuery Job User on the project"
_DAILY = re.compile(rf"{DAILY_PREFIX}(\d{{8}})")
_INTRADAY = re.compile(rf"{INTRADAY_PREFIX}(\d{{8}})")
#: one HTTP request's timeout (connect, read); getQueryResults holds a request open
#: for up to 10 s while a job runs
REQUEST_TIMEOUT = 60.0
#: where the API and the token endpoint are when the config and the key do not say
DEFAULT_API = "https://bigquery.googleapis.com"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105 - a public URL


class BigQueryReader:
    """One source's BigQuery client; ``requests`` counts the API calls sent by it."""

    def __init__(
        self,
        config: Ga4BigQuerySourceConfig,
        key: str,
        base_dir: Path,
        *,
        page_size: int,
        retry_initial: float = 1.0,
    ) -> None:
        self.config = config
        self.key = key  # "sources.<name>": how messages name the config
        self.page_size = page_size
        #: the API and the token endpoint, for the words of a call that failed in the network
        self.api_address = network.Address(
            "BigQuery API",
            config.api_endpoint or DEFAULT_API,
            f"{key}.api_endpoint",
            REQUEST_TIMEOUT,
        )
        self.token_address = network.Address(
            "Google OAuth", DEFAULT_TOKEN_URI, f"{key}.credentials_file", REQUEST_TIMEOUT
        )
        deadline = config.query_timeout.total_seconds()
        self.deadline = deadline
        self.retry = bigquery.DEFAULT_RETRY.with_deadline(deadline).with_delay(
            initial=retry_initial, maximum=max(retry_initial, min(32.0, deadline / 4))
        )
        with self._classified("signing in"):
            credentials, default_project = self._credentials(base_dir)
        project = config.project or default_project
        if not project:
            raise UserError(
                f"{key}.project: the credentials name no project; set the GCP project "
                "that runs the query jobs"
            )
        data_project, self.dataset_name = config.table_family()
        self.project = project
        self.data_project = data_project or project
        options = ClientOptions(api_endpoint=config.api_endpoint) if config.api_endpoint else None
        self.client = bigquery.Client(
            project=project,
            credentials=credentials,
            location=config.location,
            client_options=options,
        )

    def close(self) -> None:
        self.client.close()  # type: ignore[no-untyped-call]  # google-cloud-core is untyped

    # --- the calls ----------------------------------------------------------------------

    def event_tables(self) -> tuple[set[str], set[str]]:
        """``(daily, intraday)``: the date suffixes of the export's event tables."""
        daily: set[str] = set()
        intraday: set[str] = set()
        dataset = bigquery.DatasetReference(self.data_project, self.dataset_name)
        with self._classified("listing the dataset's tables"):
            tables = self.client.list_tables(
                dataset, page_size=1000, retry=self.retry, timeout=REQUEST_TIMEOUT
            )
            for table in tables:
                name = str(table.table_id)
                if match := _DAILY.fullmatch(name):
                    daily.add(match.group(1))
                elif match := _INTRADAY.fullmatch(name):
                    intraday.add(match.group(1))
        return daily, intraday

    def estimate(self, sql: str, parameters: Sequence[Any], what: str) -> int:
        """The dry run's byte estimate, logged; refused past ``maximum_bytes_billed``."""
        limit = self.config.maximum_bytes_billed
        config = bigquery.QueryJobConfig(
            dry_run=True, use_query_cache=False, query_parameters=list(parameters)
        )
        with self._classified("estimating the query (dry run)"):
            job = self.client.query(
                sql, job_config=config, retry=self.retry, timeout=REQUEST_TIMEOUT
            )
        estimate = int(job.total_bytes_processed or 0)
        log.info(
            "ga4_query_estimate",
            source=self.key.removeprefix("sources."),
            tables=what,
            bytes=estimate,
            maximum_bytes_billed=limit,
        )
        if estimate > limit:
            raise UserError(
                f"{self.key}.maximum_bytes_billed: the query over {what} would process "
                f"{_size(estimate)}, more than the limit of {_size(limit)}; raise the limit "
                "or read fewer days (start_date, lookback_days)"
            )
        return estimate

    def rows(self, sql: str, parameters: Sequence[Any]) -> Iterator[Any]:
        """The query's rows, page by page (``page_size`` a page), as ``bigquery.Row``."""
        config = bigquery.QueryJobConfig(
            query_parameters=list(parameters),
            maximum_bytes_billed=self.config.maximum_bytes_billed,
            use_legacy_sql=False,
        )
        with self._classified("running the query"):
            job = self.client.query(
                sql, job_config=config, retry=self.retry, timeout=REQUEST_TIMEOUT
            )
            result = job.result(page_size=self.page_size, retry=self.retry, timeout=self.deadline)
            yield from result

    # --- errors ---------------------------------------------------------------------------

    def _credentials(self, base_dir: Path) -> tuple[Credentials, str | None]:
        path_text = self.config.credentials_file
        if path_text:
            path = Path(path_text).expanduser()
            path = path if path.is_absolute() else base_dir / path
            try:
                creds = service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]  # google-auth is partly typed
                    str(path), scopes=list(SCOPES)
                )
            except FileNotFoundError:
                raise UserError(f"{self.key}.credentials_file: no such file: {path}") from None
            except (ValueError, KeyError, OSError) as exc:
                raise UserError(
                    f"{self.key}.credentials_file: {path} is not a service account's JSON "
                    f"key ({type(exc).__name__}); create one under IAM → Service accounts → "
                    "Keys → Add key → JSON"
                ) from None
            return creds, creds.project_id
        creds, project = google.auth.default(scopes=list(SCOPES))
        return creds, project

    @contextmanager
    def _classified(self, what: str) -> Iterator[None]:
        try:
            yield
        except api_exceptions.GoogleAPICallError as exc:
            raise self._api_error(exc, what) from None
        except api_exceptions.RetryError as exc:
            raise self._gone(what, self._last_error(exc)) from None
        except concurrent.futures.TimeoutError:
            raise self._gone(what, f"no answer within {self.config.query_timeout}") from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise self._gone(what, network.describe(exc, self.api_address)) from None
        except auth_exceptions.DefaultCredentialsError as exc:
            raise UserError(
                f"{self.key}.credentials_file: not set, and no application default "
                f"credentials were found ({_first_line(exc)}); give a service account's "
                "JSON key or set GOOGLE_APPLICATION_CREDENTIALS"
            ) from None
        except auth_exceptions.RefreshError as exc:
            raise UserError(
                f"{self.key}.{self._credentials_key()}: Google refused the credentials "
                f"({_first_line(exc)}); the service account or its key may be deleted or "
                "disabled — create a new JSON key"
            ) from None
        except auth_exceptions.TransportError as exc:
            raise self._gone(what, network.describe(exc, self.token_address)) from None

    def _last_error(self, exc: api_exceptions.RetryError) -> str:
        """What the last try of a call retried to its deadline met, in words."""
        last = exc.cause
        if isinstance(last, auth_exceptions.TransportError):
            return network.describe(last, self.token_address)
        if isinstance(last, requests.ConnectionError | requests.Timeout):
            return network.describe(last, self.api_address)
        return _first_line(last or exc)

    def _credentials_key(self) -> str:
        return "credentials_file" if self.config.credentials_file else "credentials_file (ADC)"

    def _api_error(self, exc: api_exceptions.GoogleAPICallError, what: str) -> UserError:
        reasons = {str(e.get("reason")) for e in exc.errors or () if isinstance(e, dict)}
        message = _first_line(exc.message or exc)
        if "bytesBilledLimitExceeded" in reasons:
            return UserError(
                f"{self.key}.maximum_bytes_billed: BigQuery stopped the query at the limit "
                f"of {_size(self.config.maximum_bytes_billed)} ({message}); raise the "
                "limit or read fewer days (start_date, lookback_days)"
            )
        if exc.code in (401, 403) and not reasons & {"rateLimitExceeded", "quotaExceeded"}:
            return UserError(
                f"{self.key}.{self._credentials_key()}: BigQuery refused {what} "
                f"({exc.code}: {message}); the service account needs {ROLES} "
                f"({self.project})"
            )
        if "quotaExceeded" in reasons:
            return UserError(
                f"{self.key}: a BigQuery quota of project {self.project} is used up "
                f"({message}); the next run tries again"
            )
        if exc.code == 404:
            return UserError(
                f"{self.key}.dataset: BigQuery found no {self.data_project}."
                f"{self.dataset_name} (or its tables){self._where()} ({message}); check "
                "the dataset name (analytics_<property id>) and location"
            )
        if (exc.code is not None and exc.code >= 500) or reasons & {"rateLimitExceeded"}:
            return self._gone(what, f"{exc.code}: {message}")
        return UserError(f"{self.key}: BigQuery refused {what} ({exc.code}: {message})")

    def _where(self) -> str:
        return f" in {self.config.location}" if self.config.location else ""

    def _gone(self, what: str, detail: str) -> UserError:
        return UserError(
            f"{self.key}: BigQuery did not answer {what} in {self.config.query_timeout} of "
            f"retries ({detail}); the next run tries again from the same cursor"
        )


def _first_line(value: object) -> str:
    text = str(value).strip().splitlines()
    return text[0][:300] if text else ""


def _size(count: int) -> str:
    for unit, size in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if count >= size:
            return f"{count / size:.2f} {unit}"
    return f"{count} bytes"
