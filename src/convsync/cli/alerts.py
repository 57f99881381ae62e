"""The alerts' commands: ``convsync alerts test`` (a test message to every channel)."""

from __future__ import annotations

import typer

from convsync.cli.base import _TYPER, app, ledger_opened, load_checked, settings_of, stdout
from convsync.core.errors import UserError

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


@alerts_app.callback(invoke_without_command=True, no_args_is_help=False)
def list_firing(ctx: typer.Context) -> None:
    """Without a command: the alerts firing now (rule, subject, since when, the message),
    from the ledger."""
    if ctx.invoked_subcommand is not None:
        return
    with ledger_opened(ctx) as ledger:
        firing = ledger.alert_states(firing_only=True)
        where = ledger.url_for_display
    for state in firing:
        unsent = "" if state.notified_at is not None else " (not sent yet: the next run tries)"
        stdout.print(
            f"{state.rule} · {state.subject} · firing since {state.since:%Y-%m-%d %H:%M} UTC"
            f"{unsent}\n  {state.message}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if not firing:
        stdout.print(f"No alert is firing (ledger {where}).", markup=False, highlight=False)


@alerts_app.command("test")
def send_test_messages(ctx: typer.Context) -> None:
    """Send a test message to every channel of the config's alerts (send_to or not).

    Prints one line per channel, ok or what went wrong; exits 0 only when every channel
    took its message."""
    from convsync.service.alerts.channels import send_test

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
