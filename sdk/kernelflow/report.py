"""One self-contained HTML page per run (``kernelflow report RUN_ID --out report.html``).

The page needs nothing but itself: no script, no font, no stylesheet link. It
shows the DAG (:func:`kernelflow.render.parents_svg`, coloured by each node's
state), a table of the tasks (state, duration, cache hit, attempts), and a
section per task with its errors, its inputs and outputs (type, short hash,
short repr) and its deck. A deck is shown in a sandboxed ``<iframe srcdoc>``,
so its own HTML and styles cannot change the page around it (and, sandboxed,
runs no script).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from kernelflow.api import run_report
from kernelflow.render import STATE_COLOURS, parents_svg, seconds

__all__ = ["report_html", "write_report"]

_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.state { display: inline-block; padding: 0 6px; border-radius: 4px; border: 1px solid #444; }
pre { background: #f7f7f7; padding: .5em; white-space: pre-wrap; }
iframe.deck { width: 100%; height: 420px; border: 1px solid #ccc; }
section.task { border-top: 1px solid #ddd; margin-top: 1em; }
"""


def write_report(run_id: str, path: str, *, store: Any = None) -> str:
    """Write the report of ``run_id`` to ``path``; returns the path."""
    page = report_html(run_report(run_id, store=store))
    with open(path, "w", encoding="utf-8") as file:
        file.write(page)
    return path


def report_html(report: Mapping[str, Any]) -> str:
    """The page for a :func:`kernelflow.api.run_report` dict."""
    nodes = report["nodes"]
    states = {node["node"]: node["status"] for node in nodes}
    dag = parents_svg({node["node"]: node["parents"] for node in nodes}, states)
    title = f"{report['workflow']} run {report['run_id']}"
    parts = [
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>",
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        _run_table(report),
        f"<h2>Graph</h2><div class='dag'>{dag}</div>",
        "<h2>Tasks</h2>",
        _task_table(nodes),
        *(_task_section(node) for node in nodes),
        "</body></html>\n",
    ]
    return "\n".join(parts)


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _state(status: str) -> str:
    colour = STATE_COLOURS.get(status, "#eeeeee")
    return f"<span class='state' style='background:{colour}'>{_e(status)}</span>"


def _run_table(report: Mapping[str, Any]) -> str:
    params = ", ".join(f"{k}={v}" for k, v in report["params"].items())
    rows = [
        ("status", _state(str(report["status"]))),
        ("version", _e(report["version"])),
        ("started", _e(report["started"])),
        ("finished", _e(report["finished"])),
        ("duration", _e(seconds(report.get("duration")))),
        ("parameters", _e(params)),
    ]
    table = "".join(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in rows)
    error = f"<pre class='error'>{_e(report['error'])}</pre>" if report.get("error") else ""
    return f"<table class='run'>{table}</table>{error}"


def _task_table(nodes: list[Mapping[str, Any]]) -> str:
    head = (
        "<tr><th>task</th><th>state</th><th>duration</th><th>cache hit</th><th>attempts</th></tr>"
    )
    rows = [
        f"<tr id='row-{_e(node['node'])}'><td><a href='#task-{_e(node['node'])}'>"
        f"{_e(node['node'])}</a></td><td>{_state(node['status'])}</td>"
        f"<td>{_e(seconds(node['duration']))}</td><td>{'yes' if node['cache_hit'] else 'no'}</td>"
        f"<td>{node['attempts']}</td></tr>"
        for node in nodes
    ]
    return f"<table class='tasks'>{head}{''.join(rows)}</table>"


def _task_section(node: Mapping[str, Any]) -> str:
    name = node["node"]
    parts = [
        f"<section class='task' id='task-{_e(name)}'><h3>{_e(name)} {_state(node['status'])}</h3>",
        f"<p>task {_e(node['task'])}, {node['attempts']} attempt(s), "
        f"{_e(seconds(node['duration']))}{', cache hit' if node['cache_hit'] else ''}</p>",
    ]
    for error in node["errors"]:
        parts.append(f"<pre class='error'>{_e(error)}</pre>")
    parts.append(_values("Inputs", node["inputs"], with_source=True))
    parts.append(_values("Outputs", node["outputs"], with_source=False))
    if node.get("deck"):
        parts.append(
            "<h4>Deck</h4><iframe class='deck' sandbox title='deck of "
            f'{_e(name)}\' srcdoc="{html.escape(node["deck"], quote=True)}"></iframe>'
        )
    parts.append("</section>")
    return "\n".join(parts)


def _values(title: str, values: Mapping[str, Mapping[str, Any]], *, with_source: bool) -> str:
    if not values:
        return ""
    head = "<tr><th>name</th><th>type</th><th>hash</th><th>value</th>"
    head += "<th>from</th></tr>" if with_source else "</tr>"
    rows = []
    for name, value in values.items():
        source = f"<td>{_e(value.get('source'))}</td>" if with_source else ""
        rows.append(
            f"<tr><td>{_e(name)}</td><td>{_e(value.get('type'))}</td>"
            f"<td><code>{_e(value.get('hash'))}</code></td>"
            f"<td><code>{_e(value.get('repr'))}</code></td>{source}</tr>"
        )
    return f"<h4>{title}</h4><table class='values'>{head}{''.join(rows)}</table>"
