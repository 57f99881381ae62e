"""The status page's charts as inline SVG: no script, no font or library from the
internet, scaled to the width of the screen (``viewBox``). Every mark carries a
``<title>`` (its numbers, shown on hover or a long press) and ``data-`` attributes with
its raw values."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

from convsync.service.statuspage.data import RateDay, VolumeDay

WIDTH, HEIGHT = 600, 150
LEFT, RIGHT, TOP, BOTTOM = 40, 6, 12, 20
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

#: words the charts need, in the page's language
Say = Callable[[str], str]


def _svg(label: str, body: list[str]) -> Markup:
    return Markup(  # noqa: S704 (every piece is built here from numbers and escaped text)
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(label)}" preserveAspectRatio="xMidYMid meet">'
        + "".join(body)
        + "</svg>"
    )


def _y(value: float, top: float) -> float:
    return round(TOP + PLOT_H - (value / top) * PLOT_H, 1) if top else TOP + PLOT_H


def _day_labels(days: Sequence[VolumeDay | RateDay], step: float) -> list[str]:
    """dd.mm under the first day, every 7th after it, and the last."""
    out = []
    last = len(days) - 1
    for i, d in enumerate(days):
        if i % 7 == 0 or i == last:
            if i != last and last - i < 3:  # too close to the last one's label
                continue
            x = round(LEFT + (i + 0.5) * step, 1)
            out.append(
                f'<text class="axis" x="{x}" y="{HEIGHT - 5}" text-anchor="middle">'
                f"{d.day:%d.%m}</text>"
            )
    return out


def _y_axis(top: float, labels: Sequence[tuple[float, str]]) -> list[str]:
    out = []
    for value, text in labels:
        y = _y(value, top)
        out.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}"/>'
            f'<text class="axis" x="{LEFT - 4}" y="{y + 4}" text-anchor="end">{escape(text)}</text>'
        )
    return out


def volume_chart(
    goal: str, days: Sequence[VolumeDay], say: Say, number: Callable[[float], str]
) -> Markup:
    """A bar a day; a day the volume_drop rule finds too low is marked (class
    ``anomaly``, red, with a ▼ above it); a tick shows what was usual that day."""
    top = max([d.count for d in days] + [d.usual or 0 for d in days] + [1])
    step = PLOT_W / max(len(days), 1)
    body = _y_axis(top, [(0, "0"), (top, number(top))])
    for i, d in enumerate(days):
        x = round(LEFT + i * step + step * 0.12, 1)
        w = round(step * 0.76, 1)
        y = _y(d.count, top)
        h = round(TOP + PLOT_H - y, 1)
        title = f"{d.day:%Y-%m-%d}: {number(d.count)}"
        if d.usual is not None:
            title += f" ({say('usually')} {number(d.usual)})"
        if d.drop is not None:
            title += f" −{d.drop:.0f} %"
        cls = "bar anomaly" if d.anomaly else "bar"
        body.append(
            f'<rect class="{cls}" x="{x}" y="{y}" width="{w}" height="{max(h, 0.5)}" '
            f'data-day="{d.day.isoformat()}" data-count="{d.count}">'
            f"<title>{escape(title)}</title></rect>"
        )
        if d.usual is not None:
            uy = _y(d.usual, top)
            body.append(
                f'<line class="usual" x1="{x}" x2="{round(x + w, 1)}" y1="{uy}" y2="{uy}"/>'
            )
        if d.anomaly:
            cx = round(x + w / 2, 1)
            body.append(
                f'<text class="marker" x="{cx}" y="{max(y - 2, TOP)}" text-anchor="middle">▼</text>'
            )
    body += _day_labels(days, step)
    return _svg(f"{say('volume_of')} {goal}", body)


def rate_chart(destination: str, days: Sequence[RateDay], say: Say) -> Markup:
    """The match rate of each day's deliveries as a line (broken on days without a
    verdict) with a dot per day."""
    step = PLOT_W / max(len(days), 1)
    body = _y_axis(1.0, [(0, "0 %"), (0.5, "50 %"), (1.0, "100 %")])
    segment: list[str] = []
    segments: list[list[str]] = []
    dots = []
    for i, d in enumerate(days):
        rate = d.rate
        if rate is None:
            if segment:
                segments.append(segment)
            segment = []
            continue
        x, y = round(LEFT + (i + 0.5) * step, 1), _y(rate, 1.0)
        segment.append(f"{x},{y}")
        title = f"{d.day:%Y-%m-%d}: {rate:.1%} ({d.matched} {say('of')} {d.matched + d.unmatched})"
        dots.append(
            f'<circle class="dot" cx="{x}" cy="{y}" r="3" data-day="{d.day.isoformat()}" '
            f'data-matched="{d.matched}" data-unmatched="{d.unmatched}">'
            f"<title>{escape(title)}</title></circle>"
        )
    if segment:
        segments.append(segment)
    body += [f'<polyline class="line" points="{" ".join(s)}"/>' for s in segments]
    body += dots
    body += _day_labels(days, step)
    return _svg(f"{say('match_rate_of')} {destination}", body)
