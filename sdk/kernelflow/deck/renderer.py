"""Deck renderers at Flyte's paths: ``flytekit.deck.renderer`` and ``flytekitplugins.deck``.

Each turns a value into HTML for a :class:`~kernelflow.deck.Deck` page, with
flytekit's signatures: ``MarkdownRenderer().to_html(text)``,
``TopFrameRenderer(max_rows, max_cols).to_html(df)``, ``TableRenderer().to_html(df,
header_labels, table_width)``, ``BoxRenderer(column_name).to_html(df)``. The HTML
is self-contained (no script, no font, no link), so a deck reads offline and in
``kernelflow report``. Markdown uses the ``markdown`` package when it is
installed, else a small escape-and-paragraph fallback (headings, code spans,
paragraphs). ``BoxRenderer`` draws an inline SVG box plot itself (Flyte's uses
plotly). ``FrameProfilingRenderer`` needs ``ydata-profiling``; without it, it
says so. pandas is imported only by the renderers that take a frame.
"""

from __future__ import annotations

import html
import re
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "DEFAULT_MAX_COLS",
    "DEFAULT_MAX_ROWS",
    "BoxRenderer",
    "FrameProfilingRenderer",
    "ImageRenderer",
    "MarkdownRenderer",
    "Renderable",
    "SourceCodeRenderer",
    "TableRenderer",
    "TopFrameRenderer",
]

DEFAULT_MAX_ROWS = 10
DEFAULT_MAX_COLS = 100


@runtime_checkable
class Renderable(Protocol):
    def to_html(self, python_value: Any) -> str:
        """The value as HTML."""
        ...


class TopFrameRenderer:
    """The first ``max_rows`` rows and ``max_cols`` columns of a DataFrame as a table."""

    def __init__(self, max_rows: int = DEFAULT_MAX_ROWS, max_cols: int = DEFAULT_MAX_COLS) -> None:
        self._max_rows = max_rows
        self._max_cols = max_cols

    def to_html(self, df: Any) -> str:
        frame = df.iloc[: self._max_rows, : self._max_cols]
        return frame.to_html(classes="table-striped", border=0)


class TableRenderer:
    """A whole DataFrame as a table, optionally relabelled and at a width (percent)."""

    def to_html(
        self,
        df: Any,
        header_labels: list[str] | None = None,
        table_width: int | None = None,
    ) -> str:
        frame = df.copy() if header_labels else df
        if header_labels:
            frame.columns = header_labels
        table = frame.to_html(index=False, border=0, classes="kf-table")
        if table_width is not None:
            table = table.replace("<table ", f'<table style="width:{int(table_width)}%" ', 1)
        return table


class MarkdownRenderer:
    """Markdown text as HTML."""

    def to_html(self, text: str) -> str:
        try:
            import markdown
        except ImportError:
            return markdown_fallback(text)
        return markdown.markdown(text)


class SourceCodeRenderer:
    """Python source as an escaped ``<pre>`` block."""

    def __init__(self, title: str = "Source Code") -> None:
        self._title = title

    def to_html(self, source_code: str) -> str:
        return (
            f"<h3>{html.escape(self._title)}</h3><pre><code>{html.escape(source_code)}</code></pre>"
        )


class FrameProfilingRenderer:
    """A profile of a DataFrame (needs ``ydata-profiling``)."""

    def __init__(self, title: str = "Pandas Profiling Report") -> None:
        self._title = title

    def to_html(self, df: Any) -> str:
        try:
            import ydata_profiling
        except ImportError:
            return (
                f"<p>{html.escape(self._title)}: FrameProfilingRenderer needs ydata-profiling "
                "(pip install ydata-profiling)</p>"
            )
        return ydata_profiling.ProfileReport(df, title=self._title).to_html()


class ImageRenderer:
    """An image (a path, a FlyteFile or a PIL image) inlined as a data URI ``<img>``."""

    def to_html(self, image_src: Any) -> str:
        import base64
        import io
        import mimetypes
        import os

        if hasattr(image_src, "save") and not isinstance(image_src, (str, os.PathLike)):
            buffer = io.BytesIO()
            image_src.save(buffer, format="PNG")
            data, kind = buffer.getvalue(), "image/png"
        else:
            path = os.fspath(getattr(image_src, "path", image_src))
            with open(path, "rb") as file:
                data = file.read()
            kind = mimetypes.guess_type(path)[0] or "image/png"
        encoded = base64.b64encode(data).decode("ascii")
        return f'<img src="data:{kind};base64,{encoded}" alt="image">'


class BoxRenderer:
    """A box plot of one column of a DataFrame, as inline SVG."""

    def __init__(self, column_name: str) -> None:
        self._column_name = column_name

    def to_html(self, df: Any) -> str:
        values = df[self._column_name].dropna().astype(float)
        return box_svg(self._column_name, values.quantile([0, 0.25, 0.5, 0.75, 1]).tolist())


def box_svg(label: str, quantiles: list[float], width: int = 420, height: int = 90) -> str:
    """Min, quartiles and max on a horizontal axis."""
    low, q1, median, q3, high = quantiles
    span = (high - low) or 1.0

    def x(value: float) -> float:
        return round(20 + (value - low) / span * (width - 40), 1)

    middle = 40
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' class='kf-box' width='{width}' "
        f"height='{height}' font-family='sans-serif' font-size='11'>"
        f"<title>{html.escape(label)}</title>"
        f"<line x1='{x(low)}' y1='{middle}' x2='{x(q1)}' y2='{middle}' stroke='#444'/>"
        f"<line x1='{x(q3)}' y1='{middle}' x2='{x(high)}' y2='{middle}' stroke='#444'/>"
        f"<rect x='{x(q1)}' y='{middle - 15}' width='{max(x(q3) - x(q1), 1)}' height='30' "
        "fill='#9fc5e8' stroke='#444'/>"
        f"<line x1='{x(median)}' y1='{middle - 15}' x2='{x(median)}' y2='{middle + 15}' "
        "stroke='#000' stroke-width='2'/>"
        f"<text x='{x(low)}' y='{middle + 32}'>{low:g}</text>"
        f"<text x='{x(high)}' y='{middle + 32}' text-anchor='end'>{high:g}</text>"
        f"<text x='{width // 2}' y='14' text-anchor='middle'>{html.escape(label)}</text>"
        "</svg>"
    )


_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_CODE = re.compile(r"```(.+?)```|`([^`]+)`")


def markdown_fallback(text: str) -> str:
    """Headings and paragraphs, everything escaped; code spans kept as ``<code>``."""
    blocks = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = block.splitlines()
        heading = _HEADING.match(lines[0]) if lines else None
        if heading and len(lines) == 1:
            level = len(heading.group(1))
            blocks.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif lines:
            blocks.append("<p>" + "<br>\n".join(_inline(line) for line in lines) + "</p>")
    return "\n".join(blocks)


def _inline(text: str) -> str:
    parts, last = [], 0
    for match in _CODE.finditer(text):
        parts.append(html.escape(text[last : match.start()]))
        parts.append(f"<code>{html.escape(match.group(1) or match.group(2))}</code>")
        last = match.end()
    parts.append(html.escape(text[last:]))
    return "".join(parts)
