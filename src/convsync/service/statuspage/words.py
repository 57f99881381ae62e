"""The status page's words in English and Russian, and numbers and times as each
language writes them. Texts that come from the ledger (a platform's message, a reason
code, an alert's message) are shown as they were recorded."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from convsync.config.ui import Language

LANGUAGES: tuple[Language, ...] = ("en", "ru")

_WORDS: dict[str, tuple[str, str]] = {
    # key: (English, Russian)
    "title": ("convsync status", "Состояние convsync"),
    "generated": ("as of", "на"),
    "last_run": ("Last run", "Последний запуск"),
    "next_run": ("Next run", "Следующий запуск"),
    "never": ("none yet", "ещё не было"),
    "alerts": ("Alerts", "Тревоги"),
    "firing_since": ("since", "с"),
    "no_alerts": ("No alert is firing.", "Тревог нет."),
    "destinations": ("Destinations", "Рекламные системы"),
    "destination": ("destination", "система"),
    "source": ("Source", "Источник"),
    "platform": ("platform", "платформа"),
    "state": ("state", "состояние"),
    "reason": ("why", "причина"),
    "delivered_last": ("delivered in the last run", "доставлено в последнем запуске"),
    "oldest_waiting": ("oldest waiting", "дольше всех ждёт"),
    "funnel": ("Funnel", "Воронка"),
    "period_today": ("Today", "Сегодня"),
    "period_7d": ("7 days", "7 дней"),
    "period_30d": ("30 days", "30 дней"),
    "since": ("since", "с"),
    "goal_destination": ("goal → destination", "цель → система"),
    "pulled": ("pulled", "получено"),
    "conversions": ("conversions", "конверсии"),
    "planned": ("planned", "к отправке"),
    "sent": ("sent", "отправлено"),
    "accepted": ("accepted", "принято"),
    "matched": ("matched", "сопоставлено"),
    "match_rate": ("match rate", "доля сопоставленных"),
    "waiting": ("waiting", "ожидают"),
    "rejected": ("rejected", "отклонено"),
    "skipped": ("skipped", "пропущено"),
    "deferred": ("deferred", "отложено"),
    "uncertain": ("uncertain", "неизвестно"),
    "unmatched": ("unmatched", "не сопоставлено"),
    "sending": ("sending", "отправляется"),
    "no_conversions": ("No conversions recorded in this period.", "За этот период конверсий нет."),
    "not_reported": (
        "the platform does not report matches",
        "платформа не сообщает о сопоставлении",
    ),
    "upload_summaries": (
        "Google Ads upload summaries of the period's days",
        "сводки загрузок Google Ads за дни периода",
    ),
    "successful": ("successful", "успешно"),
    "failed_events": ("failed", "с ошибкой"),
    "pending_events": ("pending", "в обработке"),
    "alerts_of": ("alerts of", "предупреждения за"),
    "volume": ("Daily conversions per goal", "Конверсии по дням для каждой цели"),
    "volume_note": (
        "▼ marks a day far below the usual for its weekday (the volume_drop alert rule).",
        "▼ — день намного ниже обычного для этого дня недели (правило volume_drop).",
    ),
    "volume_of": ("Daily conversions of", "Конверсии по дням, цель"),
    "usually": ("usually", "обычно"),
    "rates": ("Match rate per destination", "Доля сопоставленных по системам"),
    "rates_note": (
        "Of the deliveries planned each day, the share the platform matched to a click or "
        "a visitor, among those it has judged.",
        "Из доставок, запланированных в этот день, — доля сопоставленных платформой с "
        "кликом или посетителем среди уже оценённых.",
    ),
    "no_rates": (
        "No destination has reported matches in 30 days.",
        "За 30 дней ни одна система не сообщила о сопоставлении.",
    ),
    "match_rate_of": ("Match rate of", "Доля сопоставленных,"),
    "of": ("of", "из"),
    "runs": ("Recent runs", "Последние запуски"),
    "run": ("run", "запуск"),
    "started": ("started", "начат"),
    "duration": ("took", "длился"),
    "trigger": ("trigger", "причина запуска"),
    "status": ("status", "итог"),
    "no_runs": ("No runs recorded yet.", "Запусков ещё не было."),
    "failures": ("Recent failures (7 days)", "Последние ошибки (7 дней)"),
    "when": ("when", "когда"),
    "what": ("what", "что"),
    "where": ("where", "где"),
    "code": ("code", "код"),
    "why": ("why", "почему"),
    "no_failures": ("No failures in 7 days.", "За 7 дней ошибок нет."),
    "record_of": ("record of", "запись источника"),
    "upload_of": ("upload of", "загрузка,"),
    "rows": ("rows", "строк"),
    "order": ("order", "заказ"),
    "next_try": ("next try", "следующая попытка"),
    # status words: the run's and the service's
    "ok": ("ok", "в порядке"),
    "degraded": ("degraded", "есть проблемы"),
    "failed": ("failed", "сбой"),
    "interrupted": ("interrupted", "прерван"),
    "running": ("running", "идёт"),
    "starting": ("starting", "запускается"),
    "stopping": ("stopping", "останавливается"),
    "language": ("Русский", "English"),
}


def say(key: str, lang: Language) -> str:
    """The word for ``key``; a key without one (a state added later) as it is."""
    if key not in _WORDS:
        return key
    english, russian = _WORDS[key]
    return russian if lang == "ru" else english


_WEEKDAYS = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "ru": ("понедельник", "вторник", "среда", "четверг", "пятница", "суббота", "воскресенье"),
}


def weekday(day: date, lang: Language) -> str:
    return _WEEKDAYS[lang][day.weekday()]


def number(value: float, lang: Language) -> str:
    """12,345 in English, 12 345 in Russian (a narrow no-break space); a fraction with
    one decimal."""
    text = f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"
    if lang == "ru":
        text = text.replace(",", "\u202f").replace(".", ",")
    return text


def percent(value: float | None, lang: Language) -> str:
    if value is None:
        return "—"
    text = f"{value * 100:.1f} %"
    return text.replace(".", ",") if lang == "ru" else text


def moment(value: datetime | None, zone: ZoneInfo) -> str:
    """A time in the config's time zone, to the minute."""
    return "" if value is None else f"{value.astimezone(zone):%Y-%m-%d %H:%M}"


def duration(value: timedelta | float | None, lang: Language) -> str:
    """3 h 20 min / 3 ч 20 мин; 45 s / 45 с."""
    if value is None:
        return ""
    seconds = int(value.total_seconds() if isinstance(value, timedelta) else value)
    units = (("d", "д", 86400), ("h", "ч", 3600), ("min", "мин", 60), ("s", "с", 1))
    parts: list[str] = []
    for english, russian, size in units:
        if seconds >= size or (size == 1 and not parts):
            amount, seconds = divmod(seconds, size)
            parts.append(f"{amount} {russian if lang == 'ru' else english}")
        if len(parts) == 2:
            break
    return " ".join(parts)
