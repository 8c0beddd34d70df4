"""Flyte's pandera plugin (``flytekitplugins.pandera`` -> ``kernelflow.plugins.pandera``)."""
