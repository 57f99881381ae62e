"""When alerts fire and resolve, and their messages: one when a condition starts firing,
one "resolved" when it clears — remembered in the ledger (``alert_state``), so neither a
later run nor another replica sends either twice.

``evaluate`` compares the rules' conditions with the ledger's state and records each
change (a compare-and-set: of two processes judging at once, one records it).
``notify`` then sends every state whose message has not gone out: it claims the state
first (``notified_at``, in one transaction), so two processes never both send; a channel
that fails leaves the state unclaimed again, for the next run to send to that channel.
A process that dies between its claim and its send loses that one message.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import structlog

from convsync.config.alerts import AlertsConfig
from convsync.config.models import LoadedConfig
from convsync.core.logging import redact
from convsync.service.alerts import channels, rules
from convsync.service.alerts.facts import gather
from convsync.service.alerts.rules import Condition
from convsync.store.alerting import AlertStateRow, alert_key
from convsync.store.ledger import Ledger

log = structlog.get_logger("convsync.alerts")

#: what every message starts with: which program speaks
PREFIX = "convsync: "


@dataclass(frozen=True, slots=True)
class AlertTransition:
    """A condition that started firing (``firing``) or cleared, recorded by this process."""

    rule: str
    subject: str
    firing: bool
    message: str
    since: datetime


def evaluate(loaded: LoadedConfig, ledger: Ledger, now: datetime) -> list[AlertTransition]:
    """Judge every enabled rule as of ``now`` and record what changed in the ledger; the
    changes this process recorded."""
    config = loaded.app.alerts
    if config is None:
        return []
    watched = rules.subjects(config.rules, loaded.app)
    facts = gather(loaded.app, config.rules, ledger, now)
    judged = {
        alert_key(c.rule, c.subject): c
        for c in rules.evaluate(config.rules, facts)
        if c.subject in watched.get(c.rule, ())
    }
    out: list[AlertTransition] = []
    for state in ledger.alert_states():
        condition = judged.pop(state.key, None)
        if condition is None and state.firing and state.subject not in watched.get(state.rule, ()):
            condition = Condition(
                state.rule,
                state.subject,
                False,
                f"{state.subject}: {state.rule} is no longer checked "
                "(turned off, or gone from the config)",
            )
        if condition is not None:
            out += _record(ledger, condition, state, now)
    for condition in judged.values():
        out += _record(ledger, condition, None, now)
    return out


def _record(
    ledger: Ledger, condition: Condition, read: AlertStateRow | None, now: datetime
) -> list[AlertTransition]:
    """Write what ``condition`` changes in the state ``read``; the transition, if it
    is one and this process recorded it."""
    was_firing = read is not None and read.firing
    new = AlertStateRow(
        rule=condition.rule,
        subject=condition.subject,
        firing=condition.firing,
        since=now,
        message=condition.message,
        details=dict(condition.details),
        updated_at=now,
    )
    if condition.firing and was_firing:
        assert read is not None
        if (read.message, dict(read.details)) != (new.message, new.details):
            ledger.refresh_alert_state(read, new)
        return []
    if condition.firing == was_firing:  # cleared, and was not firing: nothing to say
        return []
    if not condition.firing and read is not None and read.notified_at is None and not read.sent_to:
        # its alert never went out: nothing to resolve for anyone
        new = dataclasses.replace(new, notified_at=now)
    if not ledger.save_alert_state(new, read):
        return []  # another process recorded a change first
    event = "alert fired" if condition.firing else "alert resolved"
    log.info(event, rule=condition.rule, subject=condition.subject, message=condition.message)
    return [AlertTransition(condition.rule, condition.subject, condition.firing, new.message, now)]


def notify(loaded: LoadedConfig, ledger: Ledger, now: datetime) -> list[str]:
    """Evaluate, then send each message not sent yet, through every channel of
    ``send_to`` (default: all) it has not reached; the keys (``rule:subject``) of the
    states whose message reached them all."""
    config = loaded.app.alerts
    if config is None:
        return []
    evaluate(loaded, ledger, now)
    done = []
    for state in ledger.unnotified_alerts():
        if ledger.claim_alert_notice(state, now) and _send(config, ledger, state, now):
            done.append(state.key)
    return done


def _send(config: AlertsConfig, ledger: Ledger, state: AlertStateRow, claimed_at: datetime) -> bool:
    """Send the claimed ``state``'s message to the channels it has not reached; whether
    it reached every one."""
    text = message_text(state)
    reached = list(state.sent_to)
    for name in config.recipients:
        if name in reached:
            continue
        try:
            channels.send(name, config.channels[name], text)
        except channels.ChannelError as exc:
            log.warning(
                "alert not sent",
                rule=state.rule,
                subject=state.subject,
                channel=name,
                reason=exc.message,
            )
            continue
        reached.append(name)
    complete = all(name in reached for name in config.recipients)
    ledger.finish_alert_notice(state, claimed_at, reached, complete=complete)
    return complete


def message_text(state: AlertStateRow) -> str:
    """The message of a state: ``convsync: <what fires>`` or ``convsync: resolved: …``,
    masked as log lines are (a secret or an e-mail address in a platform's words)."""
    text = PREFIX + (state.message if state.firing else f"resolved: {state.message}")
    return str(redact(None, "alert", {"text": text})["text"])


@contextmanager
def alerts_after_run(
    loaded: LoadedConfig, ledger: Ledger, clock: Callable[[], datetime]
) -> Iterator[None]:
    """Around a run: ``notify`` when it ends, also when it raised (a destination's
    unexpected error is what ``destination_failing`` watches for), not when it was
    interrupted (Ctrl-C). Nothing without ``alerts`` in the config; an error in
    alerting is logged and never fails the run."""
    try:
        yield
    except Exception:
        _notify_logged(loaded, ledger, clock())
        raise
    _notify_logged(loaded, ledger, clock())


def _notify_logged(loaded: LoadedConfig, ledger: Ledger, now: datetime) -> None:
    if loaded.app.alerts is None:
        return
    try:
        notify(loaded, ledger, now)
    except Exception:  # the alerting boundary: the run it follows stands as it was
        log.exception("alerts not evaluated")
