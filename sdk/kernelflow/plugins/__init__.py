"""Flyte's plugin packages (``flytekitplugins.NAME`` is ``kernelflow.plugins.NAME``).

Only those kernelflow has are here; importing another is refused by name
(:mod:`kernelflow.exceptions.unsupported`).
"""
