"""Charts drawn on the server as SVG: no script, nothing for the content security policy to allow.

Each chart is an `<svg role="img">` named by its `<title>` and described by its `<desc>`, and
the page puts a table of the same numbers next to it, so the numbers never depend on seeing
the drawing. Colours and fonts come from classes styled in static/css/dashboards.css (a strict
CSP forbids style attributes).
"""

import textwrap
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH = 440
# Each bar sits under its label, so a label has the chart's whole width. Labels wrap onto at
# most LABEL_LINES lines of LINE_CHARS characters, sized for the larger type of a phone screen;
# anything longer ends in "…" on the drawing, with the whole label in the row's tooltip and in
# the table beside the chart.
LINE_CHARS = 40
LABEL_LINES = 2
LABEL_LINE_HEIGHT = 24
BAR_HEIGHT = 18
ROW_GAP = 14
VALUE_WIDTH = 88
# Room before the first letter, whose glyph may reach slightly left of where it is placed.
INSET = 2
LINE_HEIGHT = 220
MARGIN = 44


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    # A second value drawn over the bar, e.g. the overdue part of an open count.
    part: float | None = None


@dataclass(frozen=True)
class Series:
    name: str
    values: list[float]
    css_class: str


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def label_lines(label: str) -> list[str]:
    """`label` wrapped at word breaks onto at most LABEL_LINES lines that fit the drawing; the
    last line ends in "…" when the label does not fit whole."""
    lines = textwrap.wrap(label, LINE_CHARS, break_on_hyphens=False) or [""]
    if len(lines) <= LABEL_LINES:
        return lines
    kept = lines[: LABEL_LINES - 1]
    rest = " ".join(lines[LABEL_LINES - 1 :])
    return [*kept, rest[: LINE_CHARS - 1].rstrip() + "…"]


def _frame(chart_id: str, title: str, desc: str, width: int, height: int, body: list[str]):
    head = (
        f'<svg class="chart" id="{escape(chart_id)}" role="img" viewBox="0 0 {width} {height}" '
        f'aria-labelledby="{escape(chart_id)}-title" aria-describedby="{escape(chart_id)}-desc" '
        f'xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>'
        f'<desc id="{escape(chart_id)}-desc">{escape(desc)}</desc>'
    )
    return mark_safe(head + "".join(body) + "</svg>")  # noqa: S308 - every value escaped above


EMPTY = "No data in this period"


def _empty(chart_id: str, title: str, desc: str, message: str) -> SafeString:
    """A chart with nothing to draw says why, wrapped to fit like the labels."""
    lines = textwrap.wrap(message, LINE_CHARS) or [""]
    spans = "".join(
        f'<tspan x="{WIDTH / 2}"{_below(index)}>{escape(line)}</tspan>'
        for index, line in enumerate(lines)
    )
    body = [f'<text class="chart-empty" x="{WIDTH / 2}" y="26">{spans}</text>']
    return _frame(chart_id, title, desc, WIDTH, 16 + LABEL_LINE_HEIGHT * len(lines), body)


def _below(index: int) -> str:
    """The shift of a wrapped line under the one before it (none for the first)."""
    return f' dy="{LABEL_LINE_HEIGHT}"' if index else ""


def bar_chart(
    chart_id: str,
    title: str,
    desc: str,
    bars: list[Bar],
    *,
    unit: str = "",
    empty: str = EMPTY,
) -> SafeString:
    """Horizontal bars, each under its label, longest value full width; an empty chart says so.

    Each row is a group whose `<title>` holds the whole label and value, shown on hover."""
    if not bars:
        return _empty(chart_id, title, desc, empty)
    top = max(max(bar.value for bar in bars), 1e-9)
    span = WIDTH - VALUE_WIDTH
    body = []
    y = 0.0
    for bar in bars:
        lines = label_lines(bar.label)
        value = f"{_number(bar.value)}{unit}"
        body.append(f'<g class="chart-row"><title>{escape(bar.label)}: {escape(value)}</title>')
        body.append(f'<text class="chart-label" x="{INSET}" y="{y + LABEL_LINE_HEIGHT - 5:.1f}">')
        for index, line in enumerate(lines):
            body.append(f'<tspan x="{INSET}"{_below(index)}>{escape(line)}</tspan>')
        body.append("</text>")
        y += len(lines) * LABEL_LINE_HEIGHT + 2
        length = max(span * bar.value / top, 1.0 if bar.value else 0.0)
        body.append(
            f'<rect class="chart-bar" x="0" y="{y:.1f}" width="{length:.1f}" '
            f'height="{BAR_HEIGHT}"/>'
        )
        if bar.part:
            body.append(
                f'<rect class="chart-bar-part" x="0" y="{y:.1f}" '
                f'width="{span * bar.part / top:.1f}" height="{BAR_HEIGHT}"/>'
            )
        body.append(
            f'<text class="chart-value" x="{length + 6:.1f}" y="{y + BAR_HEIGHT - 3:.1f}">'
            f"{escape(value)}</text></g>"
        )
        y += BAR_HEIGHT + ROW_GAP
    return _frame(chart_id, title, desc, WIDTH, round(y), body)


def line_chart(
    chart_id: str, title: str, desc: str, labels: list[str], series: list[Series]
) -> SafeString:
    """One line per series over the same x labels (days), with the first and last labelled."""
    points = max((len(s.values) for s in series), default=0)
    if points == 0:
        return _empty(chart_id, title, desc, EMPTY)
    top = max(max((max(s.values, default=0) for s in series), default=0), 1)
    plot_w, plot_h = WIDTH - 2 * MARGIN, LINE_HEIGHT - 2 * MARGIN
    step = plot_w / max(points - 1, 1)

    def xy(index: int, value: float) -> str:
        return f"{MARGIN + index * step:.1f},{MARGIN + plot_h - plot_h * value / top:.1f}"

    body = [
        f'<line class="chart-axis" x1="{MARGIN}" y1="{MARGIN + plot_h}" '
        f'x2="{MARGIN + plot_w}" y2="{MARGIN + plot_h}"/>',
        f'<text class="chart-tick" x="{MARGIN - 4}" y="{MARGIN + 4}">{_number(top)}</text>',
        f'<text class="chart-tick" x="{MARGIN - 4}" y="{MARGIN + plot_h}">0</text>',
        f'<text class="chart-day chart-day-first" x="{MARGIN}" y="{LINE_HEIGHT - 8}">'
        f"{escape(labels[0])}</text>",
        f'<text class="chart-day chart-day-last" x="{MARGIN + plot_w}" y="{LINE_HEIGHT - 8}">'
        f"{escape(labels[-1])}</text>",
    ]
    for position, line in enumerate(series):
        coords = " ".join(xy(index, value) for index, value in enumerate(line.values))
        body.append(f'<polyline class="chart-line {escape(line.css_class)}" points="{coords}"/>')
        body.append(
            f'<text class="chart-legend {escape(line.css_class)}" '
            f'x="{MARGIN + 150 * position}" y="18">{escape(line.name)}</text>'
        )
    return _frame(chart_id, title, desc, WIDTH, LINE_HEIGHT, body)
