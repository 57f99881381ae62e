"""``convsync auth google`` as a user runs it: a real process on a loopback port, the test
as the browser (the fake OAuth server's consent screen answers at once), the refresh token
on stdout only, and every way it goes wrong as one message without a traceback."""

from __future__ import annotations

import json
import os
import queue
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import google.auth.transport.requests
import google.oauth2.credentials
import pytest
import requests
from google.auth import exceptions as auth_exceptions

from tests.google_ads_fake.oauth import DATAMANAGER_SCOPE, SCOPE, FakeTokenEndpoint

CONVSYNC = str(Path(sys.executable).parent / "convsync")
WAIT = 8  # seconds: for the URL on stderr, and for the process to end


class Command:
    """``convsync [--log-level L] auth google ARGS``, its stderr read as it comes."""

    def __init__(
        self, cwd: Path, *args: str, log_level: str = "INFO", env: dict[str, str] | None = None
    ) -> None:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("CONVSYNC_", "GOOGLE_"))},
            "CONVSYNC_LOG_FORMAT": "json",
            "OAUTHLIB_INSECURE_TRANSPORT": "1",  # the fake is plain http; tests only
            **(env or {}),
        }
        self.process = subprocess.Popen(
            [CONVSYNC, "--log-level", log_level, "auth", "google", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        self._stderr: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._stderr.append(line)
            self._lines.put(line)

    def url(self) -> str:
        """The authorization URL it printed."""
        while True:
            try:
                line = self._lines.get(timeout=WAIT)
            except queue.Empty:
                self.process.kill()
                pytest.fail(f"no URL on stderr: {self.finish()}")
            found = re.search(r"http://127\.0\.0\.1:\d+/auth\?\S+", line)
            if found:
                return found.group()

    def finish(self) -> tuple[int, str, str]:
        """(exit code, stdout, stderr) once it ends."""
        try:
            code = self.process.wait(WAIT)
        finally:
            if self.process.poll() is None:
                self.process.kill()
        self._reader.join(WAIT)
        assert self.process.stdout is not None and self.process.stderr is not None
        with self.process.stdout, self.process.stderr:
            return code, self.process.stdout.read(), "".join(self._stderr)


@pytest.fixture
def oauth() -> Iterator[FakeTokenEndpoint]:
    with FakeTokenEndpoint() as endpoint:
        yield endpoint


def consent(url: str) -> str:
    """The consent screen's redirect (the browser follows it next)."""
    answer = requests.get(url, allow_redirects=False, timeout=WAIT)
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def follow(location: str) -> None:
    """The browser back at the command's loopback server."""
    assert urlsplit(location).hostname == "127.0.0.1"
    assert requests.get(location, timeout=WAIT).status_code == 200


def client_of(path: Path) -> dict[str, str]:
    data: dict[str, dict[str, str]] = json.loads(path.read_text(encoding="utf-8"))
    return next(iter(data.values()))


def refreshes(oauth: FakeTokenEndpoint, client: dict[str, str], token: str, scope: str) -> bool:
    """The refresh token works as a google_ads destination uses it (google-auth)."""
    credentials = google.oauth2.credentials.Credentials(  # type: ignore[no-untyped-call]
        token=None,
        refresh_token=token,
        client_id=client["client_id"],
        client_secret=client["client_secret"],
        token_uri=oauth.token_uri,
        scopes=[scope],
    )
    try:
        credentials.refresh(google.auth.transport.requests.Request())  # type: ignore[no-untyped-call]
    except auth_exceptions.RefreshError:
        return False
    return oauth.is_valid(str(credentials.token), scope)


def assert_user_error(result: tuple[int, str, str], *words: str) -> None:
    code, stdout, stderr = result
    assert code == 2, stderr
    assert stdout == ""
    assert "Traceback" not in stderr
    message = stderr.strip().splitlines()[-1]
    assert message.startswith("convsync: "), stderr
    for word in words:
        assert word in message, message


def test_prints_the_refresh_token_on_stdout_only(oauth: FakeTokenEndpoint, tmp_path: Path) -> None:
    secrets_file = oauth.client_secrets_file(tmp_path)
    client = client_of(secrets_file)
    command = Command(
        tmp_path, "--client-secrets", str(secrets_file), "--no-browser", "--port", "0",
        log_level="DEBUG",
    )  # fmt: skip
    url = command.url()
    follow(consent(url))
    code, stdout, stderr = command.finish()

    assert code == 0, stderr
    [grant] = [g for g in oauth.grants if g["grant_type"] == "authorization_code"]
    [issued] = [t for t in oauth.consented if oauth.refresh_tokens[t] == client["client_id"]]
    assert stdout == f"refresh_token: {issued}\n"
    # what it asked Google for: offline access, the consent screen again, PKCE, a loopback
    [asked] = oauth.consents
    assert asked["scope"] == DATAMANAGER_SCOPE
    assert (asked["access_type"], asked["prompt"]) == ("offline", "consent")
    assert asked["code_challenge_method"] == "S256" and grant["code_verifier"]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", asked["redirect_uri"])
    # the token is the destination's: it refreshes for the Data Manager API, and only that
    assert refreshes(oauth, client, issued, DATAMANAGER_SCOPE)
    assert not refreshes(oauth, client, issued, SCOPE)
    # stderr: the URL and what to do, never a secret (even at DEBUG)
    assert issued not in stderr and client["client_secret"] not in stderr
    assert f'client_id: "{client["client_id"]}"' in stderr
    assert 'client_secret: "${GOOGLE_ADS_CLIENT_SECRET}"' in stderr
    assert 'refresh_token: "${GOOGLE_ADS_REFRESH_TOKEN}"' in stderr
    assert f'token_uri: "{oauth.token_uri}"' in stderr  # not Google's: the config needs it
    assert "Traceback" not in stderr


def test_both_apis_ask_for_both_scopes(oauth: FakeTokenEndpoint, tmp_path: Path) -> None:
    secrets_file = oauth.client_secrets_file(tmp_path)
    client = client_of(secrets_file)
    command = Command(tmp_path, "--client-secrets", str(secrets_file), "--no-browser", "--api", "both")  # fmt: skip
    follow(consent(command.url()))
    code, stdout, stderr = command.finish()

    assert code == 0, stderr
    assert set(oauth.consents[0]["scope"].split()) == {SCOPE, DATAMANAGER_SCOPE}
    token = stdout.removeprefix("refresh_token: ").strip()
    assert refreshes(oauth, client, token, SCOPE)
    assert refreshes(oauth, client, token, DATAMANAGER_SCOPE)
    assert token not in stderr and client["client_secret"] not in stderr


def test_the_browser_opened_says_nothing_on_stdout(
    oauth: FakeTokenEndpoint, tmp_path: Path
) -> None:
    browser = tmp_path / "browser"  # chatty, like Chrome ("Opening in existing browser session.")
    browser.write_text('#!/bin/sh\necho "browser opened $1"\n', encoding="utf-8")
    browser.chmod(0o755)
    secrets_file = oauth.client_secrets_file(tmp_path)
    command = Command(
        tmp_path, "--client-secrets", str(secrets_file), env={"BROWSER": str(browser)}
    )
    url = command.url()
    follow(consent(url))
    code, stdout, stderr = command.finish()

    assert code == 0, stderr
    assert re.fullmatch(r"refresh_token: \S+\n", stdout)
    assert f"browser opened {url}" in stderr


def test_a_web_client_uses_its_authorized_loopback_redirect(
    oauth: FakeTokenEndpoint, tmp_path: Path
) -> None:
    with socket.socket() as probe:  # a port free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    redirect = f"http://127.0.0.1:{port}"
    secrets_file = oauth.client_secrets_file(tmp_path, "web", ("https://example.com/cb", redirect))
    command = Command(tmp_path, "--client-secrets", str(secrets_file), "--no-browser", "--api", "google_ads_api")  # fmt: skip
    follow(consent(command.url()))
    code, stdout, stderr = command.finish()

    assert code == 0, stderr
    assert oauth.consents[0]["redirect_uri"] == redirect  # exactly as registered
    assert oauth.consents[0]["scope"] == SCOPE
    assert stdout.startswith("refresh_token: 1//")


def test_consent_denied(oauth: FakeTokenEndpoint, tmp_path: Path) -> None:
    oauth.deny_next_consent = True
    command = Command(tmp_path, "--client-secrets", str(oauth.client_secrets_file(tmp_path)), "--no-browser")  # fmt: skip
    location = consent(command.url())
    assert "error=access_denied" in location
    follow(location)
    assert_user_error(command.finish(), "access denied", "access_denied")
    assert not oauth.grants  # no code, nothing exchanged


def test_a_forged_redirect_or_a_refused_code(oauth: FakeTokenEndpoint, tmp_path: Path) -> None:
    secrets_file = oauth.client_secrets_file(tmp_path)
    command = Command(tmp_path, "--client-secrets", str(secrets_file), "--no-browser")
    location = urlsplit(consent(command.url()))
    query = parse_qs(location.query) | {"state": ["forged"]}
    follow(location._replace(query=urlencode(query, doseq=True)).geturl())
    assert_user_error(command.finish(), "state")
    assert not oauth.grants

    command = Command(tmp_path, "--client-secrets", str(secrets_file), "--no-browser")
    location = urlsplit(consent(command.url()))
    query = parse_qs(location.query) | {"code": ["4/0-not-a-code"]}
    follow(location._replace(query=urlencode(query, doseq=True)).geturl())
    assert_user_error(command.finish(), "refused the authorization code", "invalid_grant")


def test_a_wrong_client_secret(oauth: FakeTokenEndpoint, tmp_path: Path) -> None:
    secrets_file = oauth.client_secrets_file(tmp_path)
    data = json.loads(secrets_file.read_text(encoding="utf-8"))
    data["installed"]["client_secret"] = "GOCSPX-not-the-right-one"
    secrets_file.write_text(json.dumps(data), encoding="utf-8")
    command = Command(tmp_path, "--client-secrets", str(secrets_file), "--no-browser")
    follow(consent(command.url()))
    result = command.finish()
    assert_user_error(result, "refused the OAuth client", "invalid_client")
    assert "GOCSPX-not-the-right-one" not in result[2]


def test_no_refresh_token_or_scopes_withheld(oauth: FakeTokenEndpoint, tmp_path: Path) -> None:
    secrets_file = oauth.client_secrets_file(tmp_path)
    oauth.omit_next_refresh_token = True
    command = Command(tmp_path, "--client-secrets", str(secrets_file), "--no-browser")
    follow(consent(command.url()))
    assert_user_error(command.finish(), "without a refresh token")

    oauth.withhold_next_consent = frozenset({SCOPE})
    command = Command(tmp_path, "--client-secrets", str(secrets_file), "--no-browser", "--api", "both")  # fmt: skip
    follow(consent(command.url()))
    assert_user_error(command.finish(), "did not grant", SCOPE)


def test_timeout_when_nobody_signs_in(oauth: FakeTokenEndpoint, tmp_path: Path) -> None:
    secrets_file = oauth.client_secrets_file(tmp_path)
    command = Command(tmp_path, "--client-secrets", str(secrets_file), "--no-browser", "--timeout", "1")  # fmt: skip
    command.url()
    assert_user_error(command.finish(), "timed out after 1 s")


def test_port_in_use(oauth: FakeTokenEndpoint, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        command = Command(tmp_path, "--client-secrets", str(oauth.client_secrets_file(tmp_path)), "--port", port, "--no-browser")  # fmt: skip
        assert_user_error(command.finish(), f"127.0.0.1:{port}", "--port")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, ["no such file"]),
        ("{not json", ["not JSON"]),
        ('{"type": "service_account", "client_email": "x"}', ["service account key"]),
        ('{"other": {}}', ['no "installed"']),
        ('{"installed": {"client_id": "1-x.apps.googleusercontent.com"}}', ['"client_secret"']),
        ('{"web": {"client_secret": "GOCSPX-abcdef"}}', ['"web" has no "client_id"']),
    ],
)
def test_bad_client_secrets_files(tmp_path: Path, content: str | None, words: list[str]) -> None:
    path = tmp_path / "client_secret.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = Command(tmp_path, "--client-secrets", str(path), "--no-browser").finish()
    assert_user_error(result, "--client-secrets", *words)


def test_a_web_client_without_a_loopback_redirect(oauth: FakeTokenEndpoint, tmp_path: Path) -> None:
    path = oauth.client_secrets_file(tmp_path, "web", ("https://example.com/cb",))
    result = Command(tmp_path, "--client-secrets", str(path), "--no-browser").finish()
    assert_user_error(result, "web OAuth client", "--port 8080")


def test_client_id_needs_the_secret_from_the_environment(tmp_path: Path) -> None:
    assert_user_error(Command(tmp_path, "--no-browser").finish(), "--client-secrets FILE")
    both = Command(tmp_path, "--client-id", "1-x", "--client-secrets", "c.json").finish()
    assert_user_error(both, "not both")
    # stdin is not a terminal here: no prompt, a clear error
    no_secret = Command(tmp_path, "--client-id", "1-x.apps.googleusercontent.com").finish()
    assert_user_error(no_secret, "GOOGLE_ADS_CLIENT_SECRET")


def test_client_id_goes_to_google(tmp_path: Path) -> None:
    """With --client-id, the endpoints are Google's; nobody signs in here, so it times out."""
    secret = "GOCSPX-from-the-environment"
    command = Command(
        tmp_path, "--client-id", "1-x.apps.googleusercontent.com", "--no-browser",
        "--timeout", "1", env={"GOOGLE_ADS_CLIENT_SECRET": secret},
    )  # fmt: skip
    result = command.finish()
    assert_user_error(result, "timed out")
    [url] = re.findall(r"https://accounts\.google\.com/o/oauth2/auth\?\S+", result[2])
    query = parse_qs(urlsplit(url).query)
    assert query["client_id"] == ["1-x.apps.googleusercontent.com"]
    assert query["scope"] == [DATAMANAGER_SCOPE]
    assert secret not in result[2]


def test_the_cli_does_not_import_the_oauth_libraries() -> None:
    code = "import sys, convsync.cli.app; print(sorted({'google_auth_oauthlib', 'oauthlib', 'requests_oauthlib'} & set(sys.modules)))"  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
