"""Flyte's ``flytekit.core`` import paths, for programs written against Flyte.

Our own core is the private ``kernelflow._core``; this package only gives
Flyte's public names their Flyte paths. It sits at the workflows layer.
"""
