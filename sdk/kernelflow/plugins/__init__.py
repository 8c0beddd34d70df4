"""Flyte's plugins at their paths: ``flytekitplugins.NAME`` is ``kernelflow.plugins.NAME``.

A plugin kernelflow has is imported by name (``import kernelflow.plugins.pandera``)
and, as in Flyte, importing it is what enables it. One kernelflow lacks is
refused with :class:`~kernelflow.errors.UnsupportedFeatureError` (README "Flyte
compatibility"), not "No module named ...".
"""

from __future__ import annotations

from typing import NoReturn

from kernelflow.exceptions.unsupported import refuse


def __getattr__(name: str) -> NoReturn:
    refuse(__name__, name)
