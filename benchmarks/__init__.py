"""kernelflow's benchmarks: ``python -m benchmarks`` measures and writes ``benchmarks/README.md``.

One module per figure, each with ``run(config) -> Section``; ``__main__`` runs
them in :data:`FIGURES` order and ``report`` renders the markdown. Baselines
(flytekit, Apache Hamilton) run in their own venv, see ``baselines``.
"""

from __future__ import annotations

FIGURES: tuple[tuple[str, str], ...] = (
    ("overhead", "Per-task engine overhead"),
    ("cache_hit", "Cache hit, small values"),
    ("hashing", "Content hashing"),
    ("cache_frame", "Cache hit with a DataFrame"),
    ("artifacts", "Artifact write/read"),
    ("kernel", "%%task cell overhead in a kernel"),
    ("papermill_run", "papermill run"),
    ("parallel", "Parallel runs"),
    ("scale", "Scale"),
    ("imports", "Import time"),
    ("store_growth", "Store growth"),
    ("object_store", "Object-store round trip"),
    ("run_records", "Run-record throughput: PostgreSQL vs SQLite"),
    ("worker_memory", "Dask map: the scheduling process's peak memory"),
)
"""(module name, short title) of each figure, in report order."""
