"""The alerts' commands: ``convsync alerts test`` (a test message to every channel)."""

from __future__ import annotations

import typer

from convsync.cli_base import _TYPER, app, load_checked, settings_of, stdout
from convsync.errors import UserError

alerts_app = typer.Typer(
    help="Alerts: test the channels, list what is firing.",
    **_TYPER,  # type: ignore[arg-type]
)
app.add_typer(alerts_app, name="alerts")

#: what an ``alerts:`` section looks like, for a config without one
_EXAMPLE = (
    'alerts: {channels: {ops: {type: telegram, bot_token: "${TELEGRAM_BOT_TOKEN}", '
    "chat_id: -1001234567890}}}"
)


# ``convsync alerts`` itself (what is firing now) is this group's callback, beside the
# rules that decide it.


@alerts_app.command("test")
def send_test_messages(ctx: typer.Context) -> None:
    """Send a test message to every channel of the config's alerts (send_to or not).

    Prints one line per channel, ok or what went wrong; exits 0 only when every channel
    took its message."""
    from convsync.alerts.channels import send_test

    loaded = load_checked(settings_of(ctx))
    alerts = loaded.app.alerts
    if alerts is None:
        raise UserError(
            f"{loaded.path} has no alerts: section to test: add one with the channels "
            f"alerts go to, like {_EXAMPLE} (telegram, webhook or email)"
        )
    results = send_test(alerts)
    for name, error in results.items():
        stdout.print(f"{name}: {error or 'ok'}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(0 if all(error is None for error in results.values()) else 1)
