"""Parsers for the text sources hand over: timestamps, amounts, currencies.

Pure functions on the hot path (every pulled row goes through ``parse_timestamp``;
every mapped conversion through ``parse_amount``), so the common shapes are tried
first with ``datetime.fromisoformat`` / ``Decimal`` and precompiled regexes.

Every parser raises :class:`ParseError` (a ``ValueError``) whose message a marketer
can act on. The message quotes the value; callers that write it somewhere lasting
use :meth:`ParseError.describe` with :func:`describe_value`, which hides values that
look like an e-mail or a phone number.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pycountry

TIME_EXPECTED = (
    "expected a date and time like 2026-11-20 14:03:00, 2026-11-20T14:03:00+03:00, "
    "20.11.2026 14:03 or Unix seconds"
)
AMOUNT_EXPECTED = "expected a number like 1500, 1500.50, 1 500,00 or 1,500.00"


class ParseError(ValueError):
    """A value that is not what its column should hold."""

    def __init__(self, text: str, what: str, problem: str) -> None:
        self.text = text
        self.what = what
        self.problem = problem
        super().__init__(self.describe(repr(text)))

    def describe(self, shown: str) -> str:
        """The message with ``shown`` in place of the value (see :func:`describe_value`)."""
        return f"{shown} is not {self.what}: {self.problem}"


_PHONE_LIKE = re.compile(r"\+?[\d\s()\-]+")


def describe_value(text: str, limit: int = 60) -> str:
    """The value quoted for a message, or a placeholder when it may be personal data.

    Rejection reasons end up in the ledger and the logs, where raw e-mails and phones
    must never go; a misconfigured column can put them in any field.
    """
    if "@" in text or (_PHONE_LIKE.fullmatch(text) and sum(c.isdigit() for c in text) >= 9):
        return "the value (hidden: it looks like an e-mail or a phone number)"
    if len(text) > limit:
        return repr(text[:limit] + "…")
    return repr(text)


# --- timestamps -----------------------------------------------------------------------

_RU_DATE = re.compile(
    r"(\d{1,2})\.(\d{1,2})\.(\d{4})(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
)
# fromisoformat refuses one-digit hours and months, and a space before the offset,
# which spreadsheets and some CRMs write
_ISO_LOOSE = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
    r"(?:\s*(Z|[+-]\d{2}(?::?\d{2})?))?",
    re.IGNORECASE,
)
_UNIX = re.compile(r"(\d{9,11})(?:[.,](\d{1,9}))?")
_UNIX_MS = re.compile(r"\d{13}")


class NaiveTimes:
    """How many times were read without a UTC offset (``parse_timestamp``'s ``naive``)."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def take(self) -> int:
        """The count so far, starting again from 0."""
        count, self.count = self.count, 0
        return count


#: The count of the pull under way, where neither the source nor the config names a
#: time zone, so that times without an offset are read as UTC (the ``naive_time``
#: notice, :func:`convsync.sync.notices.pull_with_notices`); None elsewhere. The row loops of
#: the sources take it once per read, not per row.
NAIVE_TIMES: ContextVar[NaiveTimes | None] = ContextVar("naive_times", default=None)


def parse_timestamp(text: str, tz: ZoneInfo, naive: NaiveTimes | None = None) -> datetime:
    """An aware datetime from the shapes exports use; naive ones are in ``tz`` (and
    counted in ``naive``).

    ISO 8601 (with or without offset, ``T`` or space, ``Z``), ``dd.mm.yyyy[ hh:mm[:ss]]``,
    ``yyyy-m-d h:mm``, Unix seconds (9–11 digits, optional fraction) and Unix
    milliseconds (13 digits). Unix times come back converted to ``tz``.
    """
    s = text.strip()
    if len(s) >= 8 and s[4] == "-":
        try:
            dt = datetime.fromisoformat(s)
        except ValueError:
            return _from_groups(text, _ISO_LOOSE.fullmatch(s), tz, naive, day_first=False)
        if dt.tzinfo is None:
            if naive is not None:
                naive.count += 1
            # combine() is about five times faster than replace(tzinfo=…) on 3.11
            return datetime.combine(dt, dt.time(), tz)
        return dt
    if len(s) >= 8 and (s[1] == "." or s[2] == "."):
        n = len(s)
        if s[2] == s[5] == "." and (n == 10 or (n in (16, 19) and s[10] == " " and s[13] == ":")):
            # Russian Excel's dd.mm.yyyy[ hh:mm[:ss]], reordered for the C parser
            try:
                dt = datetime.fromisoformat(f"{s[6:10]}-{s[3:5]}-{s[0:2]}{s[10:]}")
            except ValueError:
                pass  # the slow path below explains what is wrong
            else:
                if dt.tzinfo is None:
                    if naive is not None:
                        naive.count += 1
                    return datetime.combine(dt, dt.time(), tz)
        return _from_groups(text, _RU_DATE.fullmatch(s), tz, naive, day_first=True)
    return _from_unix(text, s, tz)


def _from_groups(
    text: str, m: re.Match[str] | None, tz: ZoneInfo, naive: NaiveTimes | None, *, day_first: bool
) -> datetime:
    if m is None:
        raise ParseError(text, "a date-time", TIME_EXPECTED)
    a, b, c, hour, minute, second, fraction, *offset = m.groups()
    year, month, day = (int(c), int(b), int(a)) if day_first else (int(a), int(b), int(c))
    micro = int(fraction[:6].ljust(6, "0")) if fraction else 0
    written = offset[0] if offset else None
    try:
        tzinfo = _fixed_offset(written) if written else tz
        moment = datetime(
            year, month, day, int(hour or 0), int(minute or 0), int(second or 0), micro, tzinfo
        )
    except ValueError as exc:
        raise ParseError(text, "a date-time", f"{exc} ({TIME_EXPECTED})") from None
    if naive is not None and not written:
        naive.count += 1
    return moment


def _fixed_offset(text: str) -> timezone:
    if text in ("Z", "z"):
        return UTC
    digits = text[1:].replace(":", "")
    minutes = int(digits[:2]) * 60 + int(digits[2:] or 0)
    if minutes >= 24 * 60:
        raise ValueError("the UTC offset must be under 24 hours")
    return timezone(timedelta(minutes=-minutes if text[0] == "-" else minutes))


def _from_unix(text: str, s: str, tz: ZoneInfo) -> datetime:
    if 9 <= len(s) <= 11 and s.isascii() and s.isdigit():
        return datetime.fromtimestamp(int(s), tz)
    m = _UNIX.fullmatch(s)
    if m is not None:
        seconds, fraction = int(m.group(1)), m.group(2)
        micro = int(fraction[:6].ljust(6, "0")) if fraction else 0
    elif _UNIX_MS.fullmatch(s):
        seconds, millis = divmod(int(s), 1000)
        micro = millis * 1000
    else:
        raise ParseError(text, "a date-time", TIME_EXPECTED)
    # built in UTC and converted: adding the fraction to a local wall time would be
    # wrong across a DST change
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=micro).astimezone(tz)


# --- amounts --------------------------------------------------------------------------

#: Ad platforms take a conversion value as a double-precision number (Google's
#: ``conversion_value``, VK's ``value``), which keeps 15 significant decimal digits
#: exactly (DBL_DIG): an amount of at most 15 digits, below 10**15, arrives as written;
#: a longer one would arrive rounded (``99999999999999999999999`` as ``1e23``).
AMOUNT_MAX_DIGITS = 15
AMOUNT_LIMIT = Decimal(10) ** AMOUNT_MAX_DIGITS
AMBIGUOUS_AMOUNT = (
    "ambiguous: a single {sep!r} before exactly three digits may separate thousands or "
    "decimals (1{sep}500 is 1500 in some exports, 1.5 in others); write it without a "
    "thousands separator (1500 or 1.5) or with the decimals after it (1,500.00 or 1 500,00)"
)

# up to 13 + 2 digits: below the limit by construction, no separator to be ambiguous
_PLAIN_AMOUNT = re.compile(r"-?[0-9]{1,13}(?:\.[0-9]{1,2})?")
_SPACE_LIKE = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2009": " ", "\u2007": " "})
_MONEY = re.compile(
    r"(?P<sign>[-+\u2212])?\s*"
    r"(?:(?P<pre>[^0-9\s+\-\u2212.,]+?)\s*(?P<sign2>[-+\u2212])?\s*)?"
    r"(?P<number>[0-9](?:[0-9 .,'’]*[0-9])?)"
    r"(?:\s*(?P<post>[^0-9\s][^0-9]*?))?"
)


def parse_amount(text: str) -> Decimal:
    """A Decimal from ``1500``, ``1500.50``, ``1 500,00``, ``1,500.00``, ``1.500,00``,
    ``-12,5``; a currency sign or code before or after (``₽``, ``$``, ``руб.``, ``USD``)
    is accepted and dropped — use :func:`parse_money` to keep it.
    """
    s = text.strip()
    if _PLAIN_AMOUNT.fullmatch(s):
        return Decimal(s)
    return parse_money(text)[0]


def parse_money(text: str, *, point_decimal: bool = False) -> tuple[Decimal, str | None]:
    """The amount and the ISO code of the currency written with it (None if none,
    or if the sign is ambiguous like ``¥``).

    ``point_decimal``: the text is a number as a program writes it (an API's JSON), so a
    single ``.`` is the decimal point even before three digits (``12.345``).

    The rule (README, "Sources: type: csv"):

    * ``.`` and ``,`` both present: the last one is the decimal separator, the other
      groups thousands (``1.500,00``, ``1,500.00``); space, no-break space and ``'``
      group thousands too. Groups after the first have three digits.
    * A single ``.`` or ``,`` is the decimal separator (``1500.5``, ``12,5``, ``0,125``,
      ``1234.567``) — except before exactly three digits after one to three digits
      not starting with 0 (``1.500``, ``1,500``, ``12.345``): 1500 in a Russian or
      German export, 1.5 in an American one or a program's output. Those are refused as
      ambiguous, with how to write them. Nothing else in the file is consulted: one
      row's format says nothing certain about the next's.
    * At most 15 significant digits and below 10**15 (:data:`AMOUNT_MAX_DIGITS`).
    * Digits of another script (full-width ``１５００``, Arabic-Indic ``١٥٠٠``) are read
      when every digit of the text is of that one script; a text that mixes scripts
      (``1500０``) or holds other numeric signs (``²``, ``½``, ``①``) is refused rather
      than guessed at. Full-width punctuation and signs are folded (NFKC).
    """
    s = text.strip()
    if _PLAIN_AMOUNT.fullmatch(s):
        return Decimal(s), None
    if not s.isascii():
        s = _fold_digits(text, s)
    m = _MONEY.fullmatch(s.translate(_SPACE_LIKE))
    if m is None or (m["sign"] and m["sign2"]):
        raise ParseError(text, "an amount", AMOUNT_EXPECTED)
    currency: str | None = None
    for affix in (m["pre"], m["post"]):
        if affix is None:
            continue
        if currency is not None or not _is_currency(affix):
            raise ParseError(text, "an amount", AMOUNT_EXPECTED)
        currency = normalize_currency(affix)
    negative = (m["sign"] or m["sign2"]) in ("-", "\u2212")
    magnitude = _parse_number(text, m["number"], point_decimal)
    problem = amount_problem(magnitude)
    if problem is not None:
        raise ParseError(text, "an amount", problem)
    return (-magnitude if negative else magnitude), currency


def amount_problem(value: Decimal) -> str | None:
    """Why ``value`` cannot be sent exactly (None if it can): more than
    :data:`AMOUNT_MAX_DIGITS` significant digits, or not below :data:`AMOUNT_LIMIT`."""
    if not value.is_finite():
        return "it is not a number"
    magnitude = abs(value)
    if magnitude >= AMOUNT_LIMIT:
        return (
            f"it is 10^{AMOUNT_MAX_DIGITS} or more; ad platforms keep amounts as "
            f"double-precision numbers, exact to {AMOUNT_MAX_DIGITS} digits"
        )
    digits = len(magnitude.normalize().as_tuple().digits)
    if digits > AMOUNT_MAX_DIGITS:
        return (
            f"it has {digits} significant digits; ad platforms keep amounts as "
            f"double-precision numbers, exact to {AMOUNT_MAX_DIGITS} digits, so it would "
            f"arrive rounded (round it to at most {AMOUNT_MAX_DIGITS} digits)"
        )
    return None


def amount_text(value: Decimal | int | float) -> str:
    """Text of a typed number (a database column, a JSON number) that
    :func:`parse_amount` reads back as that number.

    Plain ``format(value, "f")`` can be ambiguous by the rule above (``12.345`` from a
    ``NUMERIC(10, 3)`` column or a float); a trailing zero makes it unambiguous
    (``12.3450``) without changing the value.
    """
    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    text = format(number, "f")
    head, point, tail = text.lstrip("-").partition(".")
    if point and len(tail) == 3 and len(head) <= 3 and head[0] != "0":
        text += "0"
    return text


def _fold_digits(text: str, s: str) -> str:
    """``s`` with its digits as ASCII and full-width forms folded (NFKC); raises when
    the digits are of several scripts or include other numeric signs."""
    zeros: set[int] = set()
    for c in s:
        if c.isdecimal():
            zeros.add(ord(c) - unicodedata.decimal(c))
        elif c.isnumeric():
            raise ParseError(text, "an amount", f"{c!r} is not a digit 0–9 ({AMOUNT_EXPECTED})")
    if len(zeros) > 1:
        scripts = " and ".join(sorted(_digit_script(z) for z in zeros))
        raise ParseError(
            text,
            "an amount",
            f"it mixes {scripts} digits, which is a typing slip, not a number; "
            "retype it with the digits 0–9",
        )
    folded = unicodedata.normalize("NFKC", s)
    digits = sum(c.isdecimal() for c in s)
    if sum(c.isdecimal() for c in folded) != digits:  # a sign that folds into digits
        raise ParseError(text, "an amount", AMOUNT_EXPECTED)
    if not folded.isascii():
        folded = "".join(str(unicodedata.decimal(c)) if c.isdecimal() else c for c in folded)
    return folded


def _digit_script(zero: int) -> str:
    if zero == ord("0"):
        return "ASCII"
    return unicodedata.name(chr(zero), "other").removesuffix(" DIGIT ZERO").lower()


def _parse_number(text: str, body: str, point_decimal: bool) -> Decimal:
    dots, commas = body.count("."), body.count(",")
    decimal_sep = ""
    if dots and commas:
        decimal_sep = "." if body.rfind(".") > body.rfind(",") else ","
    elif dots == 1 or commas == 1:
        decimal_sep = "." if dots else ","
        head, _, tail = body.partition(decimal_sep)
        if (
            len(tail) == 3
            and len(head) <= 3
            and head[0] != "0"
            and head.isdigit()
            and not (point_decimal and decimal_sep == ".")
        ):
            raise ParseError(text, "an amount", AMBIGUOUS_AMOUNT.format(sep=decimal_sep))
    if decimal_sep:
        int_part, _, frac = body.rpartition(decimal_sep)
        if not frac.isdigit() or decimal_sep in int_part:
            raise ParseError(text, "an amount", AMOUNT_EXPECTED)
    else:
        int_part, frac = body, ""
    separators = set(int_part).difference("0123456789")
    if len(separators) > 1:
        raise ParseError(text, "an amount", AMOUNT_EXPECTED)
    if separators:
        groups = int_part.split(separators.pop())
        if not 1 <= len(groups[0]) <= 3 or any(len(g) != 3 for g in groups[1:]):
            raise ParseError(
                text, "an amount", f"digit groups are not by three ({AMOUNT_EXPECTED})"
            )
        int_part = "".join(groups)
    return Decimal(f"{int_part}.{frac}" if frac else int_part)


# --- currencies -----------------------------------------------------------------------

#: signs and words exports write instead of the ISO code; ambiguous ones map to None
_CURRENCY_WORDS: dict[str, str | None] = {
    "₽": "RUB", "руб": "RUB", "р": "RUB", "рубль": "RUB", "рубля": "RUB", "рублей": "RUB",
    "rur": "RUB", "810": "RUB",
    "$": "USD", "us$": "USD", "€": "EUR", "евро": "EUR", "£": "GBP",
    "₸": "KZT", "тенге": "KZT", "₴": "UAH", "грн": "UAH", "₺": "TRY", "₹": "INR",
    "₾": "GEL", "₼": "AZN", "byn": "BYN",
    "¥": None, "￥": None,
}  # fmt: skip
_NOT_CURRENCIES = frozenset({"XXX", "XTS"})


def _word_key(text: str) -> str:
    return text.strip().casefold().rstrip(".")


def _is_currency(affix: str) -> bool:
    return _word_key(affix) in _CURRENCY_WORDS or normalize_currency(affix) is not None


@functools.lru_cache(maxsize=512)
def normalize_currency(text: str) -> str | None:
    """The ISO 4217 alpha-3 code for ``text``, or None if it names no known currency.

    Accepts codes in any case (``rub``), the numeric code (``643``), ``RUR`` (the
    pre-1998 rouble, still in Russian accounting exports) and common signs and words
    (``₽``, ``руб.``, ``р.``, ``$`` → USD, ``€``). ``¥`` is None: JPY or CNY.
    """
    key = _word_key(text)
    if key in _CURRENCY_WORDS:
        return _CURRENCY_WORDS[key]
    if len(key) != 3:
        return None
    if key.isdigit():
        found = pycountry.currencies.get(numeric=key)
    elif key.isascii() and key.isalpha():
        found = pycountry.currencies.get(alpha_3=key.upper())
    else:
        return None
    if found is None or found.alpha_3 in _NOT_CURRENCIES:
        return None
    return str(found.alpha_3)
