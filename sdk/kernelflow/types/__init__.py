"""Flyte's ``flytekit.types`` at the same path (``kernelflow.types.*``)."""
