"""``kernelflow report``: one self-contained HTML page per run (issue 15, point 4),
and the deck renderers at Flyte's path (``kernelflow.deck.renderer``)."""

from __future__ import annotations

import base64
import html
import pickle
import re
from pathlib import Path

import pandas as pd
import pytest
from flyte_lifecycle import report as example

import kernelflow
from kernelflow.cli import main
from kernelflow.errors import KernelflowError


def failed_run_with_cache_and_deck() -> str:
    """Two runs of the example; in the second ``load`` is cached, ``describe`` writes a
    deck and ``check`` fails."""
    kernelflow.run(example.report_wf, {"n": 5})
    result = kernelflow.run(example.report_wf, {"n": 5})
    assert result.status == "failed" and "not enough" in str(result.error)
    return result.run_id


def test_the_report_has_the_dag_every_state_the_deck_and_no_bytes(tmp_path: Path) -> None:
    run_id = failed_run_with_cache_and_deck()
    report = kernelflow.api.run_report(run_id)
    nodes = {node["node"]: node for node in report["nodes"]}
    assert {name: node["status"] for name, node in nodes.items()} == {
        "load": "cached",
        "describe": "succeeded",
        "check": "failed",
    }
    assert nodes["load"]["cache_hit"] and not nodes["describe"]["cache_hit"]
    assert "not enough" in nodes["check"]["errors"][0]
    assert nodes["check"]["parents"] == ["describe"]
    assert nodes["describe"]["outputs"]["o0"] == {
        "type": "int",
        "hash": nodes["check"]["inputs"]["rows"]["hash"],
        "repr": "5",
    }
    assert nodes["describe"]["deck"] and nodes["load"]["deck"] is None

    out = tmp_path / "report.html"
    assert main(["report", run_id, "--out", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert "<svg" in page and "class='kf-dag'" in page
    for name, state in (("load", "cached"), ("describe", "succeeded"), ("check", "failed")):
        assert re.search(f"<h3>{name} <span[^>]*>{state}</span>", page)
    deck = html.unescape(page)
    assert "<h2>Iris widths</h2>" in deck and "class='kf-box'" in deck and "<th>width</th>" in deck
    assert "5 rows is not enough" in page
    # Self-contained: no script, stylesheet or font fetched; values summarised, never copied.
    assert not re.search(r"<script|<link|@import|src=['\"]?http", page)
    assert "base64" not in page and "gAS" not in page and "gAV" not in page
    frame = example.load(n=5)
    for blob in (pickle.dumps(frame), pickle.dumps(5)):
        assert base64.b64encode(blob).decode()[:16] not in page


def test_a_missing_run_has_no_report() -> None:
    with pytest.raises(KernelflowError, match="no run 'nope'"):
        kernelflow.api.run_report("nope")
    assert main(["report", "nope"]) != 0


def test_renderers_at_flytes_path_write_tables_markdown_and_plots() -> None:
    from kernelflow.deck import Deck, MarkdownRenderer, TopFrameRenderer
    from kernelflow.deck.renderer import BoxRenderer, TableRenderer, markdown_fallback
    from kernelflow.plugins.deck.renderer import TableRenderer as PluginTable

    assert Deck is kernelflow.Deck and PluginTable is TableRenderer
    df = pd.DataFrame({"sepal": [1.5, 2.5, 9.0], "kind": ["x", "y", "z"]})
    top = TopFrameRenderer(max_rows=2, max_cols=1).to_html(df)
    assert "<th>sepal</th>" in top and "2.5" in top and "9.0" not in top and "kind" not in top
    table = TableRenderer().to_html(df, header_labels=["S", "K"], table_width=50)
    assert "<th>S</th>" in table and "<td>z</td>" in table and "width:50%" in table
    md = MarkdownRenderer().to_html("# Title\n\nSome `code` <b>")
    assert "<h1>Title</h1>" in md and "<code>code</code>" in md
    assert markdown_fallback("## Sub\n\na <script>") == "<h2>Sub</h2>\n<p>a &lt;script&gt;</p>"
    box = BoxRenderer("sepal").to_html(df)
    assert box.startswith("<svg") and "sepal" in box and ">9<" in box
