"""Every package is in setup.cfg: one missing there is missing from the wheel.

Two source roots (``sdk/`` and ``jupyter_ext/``) mean setup.cfg lists the
packages by hand; an editable install hides a forgotten one, a wheel does not.
"""

from __future__ import annotations

import configparser

from conftest import ROOT


def test_setup_cfg_lists_every_package_of_both_source_roots() -> None:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    listed = {line.strip() for line in config["options"]["packages"].splitlines() if line.strip()}
    found = set()
    for root in (ROOT / "sdk", ROOT / "jupyter_ext"):
        for init in root.rglob("__init__.py"):
            found.add(".".join(init.parent.relative_to(root).parts))
    assert found - listed == set(), "add these to [options] packages in setup.cfg"
    assert listed - found == set(), "these are listed but do not exist"
