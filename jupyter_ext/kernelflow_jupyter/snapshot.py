"""The static picture of a finished run, which replaces the live widgets in the notebook.

Widget models live in the kernel: once it is gone (the notebook is reopened, or
shared), a widget output shows "Error displaying widget: model not found". So
when a run ends its progress view becomes plain HTML: the task table (state,
time, cached, error), under each task its captured output in a collapsible
``<details>`` (open for a failed task), and the DAG coloured by state. It is
what the notebook file keeps, and needs no kernel and no extension to render.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from typing import Any

from kernelflow.render import STATE_COLOURS, seconds
from kernelflow_jupyter.rows import Row

Output = dict[str, Any]
_MAX_TEXT = 20_000  # characters of one stream kept in the notebook; the tail is what matters
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_STYLE = "font-family:sans-serif;font-size:12px"
_CELL = "text-align:left;padding:2px 8px;vertical-align:top"  # Jupyter right-aligns tables
_PRE = "margin:2px 0;padding:4px;white-space:pre-wrap;font-size:11px;max-height:30em;overflow:auto"


def snapshot_html(
    header: str,
    rows: Mapping[str, Row],
    outputs: Mapping[str, Sequence[Output]],
    dag: str,
    children: Mapping[str, Mapping[str, Row]] | None = None,
) -> str:
    """The whole view: a header line, the task table with each task's output and the
    inner tasks a node built (``@dynamic``), the DAG."""
    children = children or {}
    body = "".join(
        _task_rows(node, row, outputs.get(node, ()))
        + "".join(
            _task_row(child, child_row, inner=True)
            for child, child_row in children.get(node, {}).items()
        )
        for node, row in rows.items()
    )
    return (
        f"<div class='kernelflow-snapshot' style='{_STYLE}'>"
        f"<div style='margin-bottom:4px'>{header}</div>"
        "<table style='font-size:12px;border-collapse:collapse'><tr>"
        f"{_headings('task', 'state', 'time', 'cached', 'error')}</tr>{body}</table>{dag}</div>"
    )


def _task_rows(node: str, row: Row, outputs: Sequence[Output]) -> str:
    if not outputs:
        return _task_row(node, row)
    opened = " open" if row.state == "failed" else ""
    count = f"{len(outputs)} output{'s' if len(outputs) != 1 else ''}"
    shown = "".join(output_html(output) for output in outputs)
    return (
        f"{_task_row(node, row)}<tr><td colspan='5' style='{_CELL};padding-left:16px'>"
        f"<details{opened}><summary>{html.escape(node)}: {count}</summary>{shown}</details>"
        "</td></tr>"
    )


def _task_row(node: str, row: Row, *, inner: bool = False) -> str:
    colour = STATE_COLOURS.get(row.state, "#eee")
    indent = ";padding-left:20px" if inner else ""
    return (
        f"<tr><td style='{_CELL}{indent}'>{html.escape(node)}</td>"
        f"<td style='{_CELL};background:{colour}'>{row.state} {html.escape(row.items)}</td>"
        f"<td style='{_CELL}'>{seconds(row.duration)}</td>"
        f"<td style='{_CELL}'>{'yes' if row.cached else ''}</td>"
        f"<td style='{_CELL}'>{html.escape(row.error)}</td></tr>"
    )


def _headings(*names: str) -> str:
    return "".join(f"<th style='{_CELL}'>{name}</th>" for name in names)


def output_html(output: Output) -> str:
    """One captured output as HTML, the richest form a browser shows without a kernel."""
    kind = output.get("output_type")
    if kind == "stream":
        background = "#fdd" if output.get("name") == "stderr" else "#f7f7f7"
        return _pre(output.get("text", ""), background)
    if kind == "error":
        text = "\n".join(output.get("traceback") or ())
        return _pre(text or f"{output.get('ename')}: {output.get('evalue')}", "#fdd")
    return _data_html(output.get("data") or {})


def _data_html(data: Mapping[str, Any]) -> str:
    if "text/html" in data:
        return f"<div>{_joined(data['text/html'])}</div>"
    if "image/svg+xml" in data:
        return f"<div>{_joined(data['image/svg+xml'])}</div>"
    for mimetype in ("image/png", "image/jpeg", "image/gif"):
        if mimetype in data:
            encoded = _joined(data[mimetype]).replace("\n", "")
            return f"<div><img src='data:{mimetype};base64,{encoded}'/></div>"
    return _pre(_joined(data.get("text/plain", "")), "#f7f7f7")


def _joined(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _pre(text: str, background: str) -> str:
    text = _ANSI.sub("", text)  # colours of tracebacks and loggers: no terminal here
    if len(text) > _MAX_TEXT:
        dropped = len(text) - _MAX_TEXT
        text = f"[{dropped:,} earlier characters not kept]\n" + text[-_MAX_TEXT:]
    return f"<pre style='{_PRE};background:{background}'>{html.escape(text)}</pre>"
