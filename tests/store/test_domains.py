"""Projects and domains, on SQLite and on a real PostgreSQL server: runs and cache entries
are recorded in one project and domain, listed apart, a cache is never shared across
domains unless a run asks (``--cache-from``), an unknown domain is refused before
anything is written, promotions are recorded, and a store of schema version 3 keeps
its rows in the default project's development domain.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from kernelflow._core.scope import Scope
from kernelflow.store import _schema
from kernelflow.store.runs import RunStore

Raw = Callable[..., list[tuple[object, ...]]]
DEV, STAGING, PROD = Scope(), Scope(domain="staging"), Scope(domain="production")

FLOW = """
import os

from kernelflow import task, workflow


@task(cache=True)
def load(n: int) -> int:
    with open(os.environ["FLOW_LOG"], "a") as handle:
        print("load", file=handle)
    return n * 10


@workflow
def wf(n: int = 1) -> int:
    return load(n=n)
"""


@pytest.fixture(autouse=True)
def no_scope_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The defaults, whatever the environment running the tests says."""
    for name in ("KERNELFLOW_PROJECT", "KERNELFLOW_DOMAIN", "KERNELFLOW_CACHE_FROM"):
        monkeypatch.delenv(name, raising=False)


def _start(store: RunStore, run_id: str, scope: Scope) -> None:
    store.start_run(
        run_id=run_id, workflow="wf", version="v1", params={}, environment={}, scope=scope
    )


def _put(store: RunStore, key: str, scope: Scope, value: str) -> None:
    outputs = {"o0": {"hash": value, "artifact": {"uri": f"artifacts/{value}.pkl"}}}
    store.cache_put(key, task="load", outputs=outputs, manifest={}, duration=1.0, scope=scope)


# -- the run store ---------------------------------------------------------------------


def test_runs_of_two_domains_are_listed_apart(store: RunStore) -> None:
    _start(store, "dev-run", DEV)
    _start(store, "prod-run", PROD)
    _start(store, "other-team", Scope(project="other", domain="production"))

    def listed(**scope: str) -> list[object]:
        return [run["run_id"] for run in store.list_runs(**scope)]

    assert listed(project="default", domain="development") == ["dev-run"]
    assert listed(project="default", domain="production") == ["prod-run"]
    assert listed(project="default") == ["prod-run", "dev-run"]
    assert listed() == ["other-team", "prod-run", "dev-run"]
    assert store.get_run("prod-run")["domain"] == "production"  # type: ignore[index]


def test_a_cache_entry_of_development_is_no_hit_in_production(store: RunStore) -> None:
    _put(store, "k", DEV, "from-dev")
    assert store.cache_lookup("k", scope=DEV) is not None
    assert store.cache_lookup("k", scope=PROD) is None
    assert store.cache_lookup("k", scope=Scope(project="other")) is None  # nor across projects

    _put(store, "k", PROD, "from-prod")  # the same key: each domain keeps its own entry
    dev, prod = store.cache_lookup("k", scope=DEV), store.cache_lookup("k", scope=PROD)
    assert dev is not None and dev.outputs["o0"]["hash"] == "from-dev"
    assert prod is not None and prod.outputs["o0"]["hash"] == "from-prod"
    assert [e["domain"] for e in store.cache_entries(project="default", domain="production")] == [
        "production"
    ]


def test_a_deferred_entry_is_no_hit_in_another_domain_before_it_is_committed(
    store: RunStore,
) -> None:
    outputs = {"o0": {"hash": "h", "artifact": {"uri": "artifacts/h.pkl"}}}
    store.cache_put("k", task="t", outputs=outputs, manifest={}, duration=0.0, defer=True)
    assert store.deferred == 1
    assert store.cache_lookup("k", scope=DEV) is not None
    assert store.cache_lookup("k", scope=PROD) is None


def test_cache_from_reads_the_other_domain_and_prefers_its_own(store: RunStore) -> None:
    _put(store, "k", PROD, "from-prod")
    staging_reading_prod = Scope(domain="staging", cache_from="production")
    hit = store.cache_lookup("k", scope=staging_reading_prod)
    assert hit is not None and hit.outputs["o0"]["hash"] == "from-prod"

    _start(store, "r1", STAGING)  # the hit is counted on the production entry it used
    store.record_hit(
        run_id="r1", node="load", task="load", cache_key="k", code_hash="c", inputs={},
        outputs=hit.outputs_json, started=time.time(), scope=staging_reading_prod,
    )  # fmt: skip
    assert store.cache_get("k", domain="production")["hits"] == 1  # type: ignore[index]
    assert store.node_executions("r1")[0]["status"] == "cached"

    _put(store, "k", STAGING, "from-staging")  # a run's new entry goes to its own domain
    hit = store.cache_lookup("k", scope=staging_reading_prod)
    assert hit is not None and hit.outputs["o0"]["hash"] == "from-staging"
    prod = store.cache_get("k", domain="production")
    assert prod is not None and prod["outputs"]["o0"]["hash"] == "from-prod"  # type: ignore[index]


def test_promotions_are_recorded_and_listed_newest_first(store: RunStore) -> None:
    for version in ("v1", "v2"):
        store.record_promotion(
            project="default", workflow="wf", version=version, from_domain="development",
            to_domain="production", promoted_by="ada",
        )  # fmt: skip
    store.record_promotion(
        project="other", workflow="wf", version="v9", from_domain="staging",
        to_domain="production", promoted_by="bob",
    )  # fmt: skip
    listed = store.promotions("wf", project="default")
    assert [(p["version"], p["promoted_by"]) for p in listed] == [("v2", "ada"), ("v1", "ada")]
    assert abs(float(listed[0]["promoted_ts"]) - time.time()) < 60  # type: ignore[arg-type]


# -- a store of schema version 3 --------------------------------------------------------


def test_a_version_3_store_migrates_and_keeps_its_rows_in_default_development(
    runs_target: str,
    open_runs: Callable[[], RunStore],
    raw_sql: Raw,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with monkeypatch.context() as old:  # the tables as kernelflow wrote them at version 3
        old.setattr(_schema, "SCHEMA_VERSION", 3)
        old.setattr(_schema, "SCHEMA", _schema._RECORDS + _schema._CACHE_V3 + _schema._HITS)
        open_runs().close()
    raw_sql(
        "INSERT INTO runs (run_id, workflow, version, status, started, started_ts, params,"
        " environment) VALUES ('old-run', 'wf', 'v1', 'succeeded', 'then', 1.0, '{}', '{}')"
    )
    raw_sql(
        "INSERT INTO cache (key, task, outputs, manifest, duration, created, created_ts)"
        " VALUES ('k', 'load', '{\"o0\": {\"hash\": \"old\"}}', '{}', 2.0, 'then', 1.0)"
    )
    raw_sql("INSERT INTO run_numbers (run_id) VALUES ('old-run')")
    raw_sql("INSERT INTO cache_hits (run, entry, started_ts) VALUES (1, 1, 1.0)")
    raw_sql("INSERT INTO cache_retired (num, key, task, outputs, manifest) VALUES (7, 'gone',"
            " 'load', '{}', '{}')")  # fmt: skip

    with open_runs() as store:
        [run] = store.list_runs(project="default", domain="development")
        assert (run["run_id"], run["domain"], run["project"]) == (
            "old-run",
            "development",
            "default",
        )
        entry = store.cache_get("k")  # the default scope
        assert entry is not None and entry["hits"] == 1 and entry["domain"] == "development"
        assert store.cache_lookup("k", scope=PROD) is None
        _put(store, "k", PROD, "new")  # numbering goes on after the retired entry's 7
        _put(store, "k2", DEV, "new")
    nums = [row[0] for row in raw_sql("SELECT num FROM cache ORDER BY num")]
    assert nums[0] == 1 and min(nums[1:]) > 7
    if runs_target.startswith("postgresql://"):
        assert raw_sql("SELECT version FROM kernelflow_schema") == [(_schema.SCHEMA_VERSION,)]
    else:
        assert raw_sql("PRAGMA user_version") == [(_schema.SCHEMA_VERSION,)]
