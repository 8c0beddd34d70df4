"""The kernel adapter: the only code under ``sdk/`` that talks to an IPython kernel.

- :mod:`.syntax`: IPython syntax (magics, ``!cmd``) to plain Python, for the analysis.
- :mod:`.session`: the per-kernel session: the task cells run so far, and runs of them.
- :mod:`.exported`: what an exported notebook calls in the kernel papermill starts.
- :mod:`.extension`: ``%load_ext kernelflow``, handed to the installed Jupyter front end.
"""
