"""Projects and domains, on SQLite and on a real PostgreSQL server: runs and cache entries
are recorded in one project and domain, listed apart, a cache is never shared across
domains unless a run asks (``--cache-from``), an unknown domain is refused before
anything is written, promotions are recorded, and a store of schema version 3 keeps
its rows in the default project's development domain.
"""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from notebook_runner import make_notebook, write

from kernelflow._core.scope import Scope
from kernelflow.cli import main
from kernelflow.notebook.export import export
from kernelflow.store import _schema
from kernelflow.store.home import close_stores
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
    # what `run --resume last` resumes: the newest run of the current domain
    newest = store.last_run("wf", project="default", domain="development")
    assert newest is not None and newest["run_id"] == "dev-run"


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


# -- the command line --------------------------------------------------------------------


@pytest.fixture
def flow_dir(
    tmp_path: Path, runs_env: str | None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A project with a cached flow, run history in SQLite or on the server (``runs_env``)."""
    (tmp_path / "flow.py").write_text(FLOW)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLOW_LOG", str(tmp_path / "log.txt"))
    yield tmp_path
    close_stores()


def _ran(flow_dir: Path) -> list[str]:
    log = flow_dir / "log.txt"
    lines = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return lines


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_cache_is_shared_within_a_domain_and_not_across_unless_asked(
    flow_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = ("run", "flow.py:wf", "--quiet")
    assert _cli(capsys, *run)[0] == 0 and _ran(flow_dir) == ["load"]
    assert _cli(capsys, *run)[0] == 0 and _ran(flow_dir) == []  # development: a hit
    assert _cli(capsys, "--domain", "production", *run)[0] == 0
    assert _ran(flow_dir) == ["load"]  # production never used development's entry

    code, out, err = _cli(capsys, "--domain", "staging", *run, "--cache-from", "production")
    assert code == 0, err
    assert _ran(flow_dir) == []  # staging read production's entry
    code, out, _ = _cli(capsys, "--domain", "staging", "cache", "ls")
    assert out.strip() == "the cache is empty"  # and wrote none of its own

    def domains(*args: str) -> list[str]:  # the last column of each run listed
        return [line.split()[-1] for line in _cli(capsys, *args)[1].splitlines()[1:]]

    assert domains("--domain", "production", "runs") == ["production"]
    assert domains("runs") == ["development", "development"]
    assert domains("runs", "--all-domains") == [
        "staging", "production", "development", "development"
    ]  # fmt: skip
    code, out, _ = _cli(capsys, "cache", "ls", "--all-domains")
    assert sorted(line.split()[-1] for line in out.splitlines()) == ["development", "production"]

    import kernelflow  # the Python API filters alike
    from kernelflow import api

    assert list(kernelflow.runs(domain="production")["domain"]) == ["production"]
    assert len(kernelflow.runs(domain="*")) == 4 and len(kernelflow.runs(project="*")) == 2
    assert kernelflow.runs(project="other").empty
    assert [e["domain"] for e in api.cache_entries(domain="production")] == ["production"]

    assert _cli(capsys, "--domain", "production", "cache", "clear")[0] == 0
    code, out, _ = _cli(capsys, "cache", "ls", "--all-domains")
    assert [line.split()[-1] for line in out.splitlines()] == ["development"]


def test_an_unknown_domain_is_one_paragraph_exit_2_and_nothing_written(
    flow_dir: Path, runs_env: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _cli(capsys, "--domain", "prod", "run", "flow.py:wf")
    assert code == 2
    assert "'prod'" in err and "development, staging, production" in err
    assert "Traceback" not in err and "run_id" not in out
    assert _ran(flow_dir) == []
    code, _, err = _cli(capsys, "run", "flow.py:wf", "--cache-from", "prod")
    assert code == 2 and "--cache-from" in err
    code, _, err = _cli(capsys, "--project", "../sales", "run", "flow.py:wf")
    assert code == 2 and "'../sales' cannot name a project" in err
    assert _cli(capsys, "runs", "--all-domains")[1].strip() == "no runs yet"


def test_an_installation_may_name_its_own_domains(
    flow_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KERNELFLOW_DOMAINS", "development, qa,production")
    code, _, err = _cli(capsys, "--domain", "qa", "run", "flow.py:wf", "--quiet")
    assert code == 0, err
    assert [
        line.split()[-1] for line in _cli(capsys, "--domain", "qa", "runs")[1].splitlines()[1:]
    ] == ["qa"]
    code, _, err = _cli(capsys, "--domain", "staging", "runs")
    assert code == 2 and "the domains are development, qa, production" in err


def test_an_unknown_domain_in_the_environment_is_refused_by_a_new_process(
    flow_dir: Path, runs_env: str | None
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kernelflow", "run", "flow.py:wf"],
        capture_output=True, text=True, timeout=120, cwd=flow_dir,
        env={**os.environ, "KERNELFLOW_DOMAIN": "qa"},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") <= 3 and "'qa' does not exist" in done.stderr
    assert _ran(flow_dir) == []


def test_promote_records_who_when_and_which_version(
    flow_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cells = ["%load_ext kernelflow", "%%task total\ntotal: int = 1 + 1"]
    source = write(make_notebook(cells, name="summing"), flow_dir / "summing.ipynb")
    version = export(source, flow_dir / "exports").version
    before = time.time()

    code, out, err = _cli(capsys, "promote", "summing", version, "--to", "production")
    assert code == 0, err
    assert f"promoted summing {version} from development to production" in out
    code, out, _ = _cli(capsys, "promotions", "summing")
    [line] = out.splitlines()
    assert f"summing {version}  development -> production  by {getpass.getuser()}" in line
    when = line.split()[0]
    assert when[:10] == time.strftime("%Y-%m-%d", time.gmtime(before))

    code, _, err = _cli(capsys, "promote", "summing", "0000000", "--to", "production")
    assert code == 2 and "no exported version '0000000'" in err and version in err
    code, _, err = _cli(capsys, "promote", "summing", version, "--to", "prod")
    assert code == 2 and "'prod' does not exist" in err
    assert len(_cli(capsys, "promotions")[1].splitlines()) == 1  # the refused ones: not recorded


def test_an_export_is_in_its_domain_and_those_it_is_promoted_to_and_schedules_follow(
    flow_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cells = ["%load_ext kernelflow", "%%task total\ntotal: int = 1 + 1"]
    source = write(make_notebook(cells, name="summing"), flow_dir / "summing.ipynb")
    exported = export(source, flow_dir / "exports")
    version, path = exported.version, str(exported.path)
    code, out, _ = _cli(capsys, "versions", "summing")
    assert code == 0 and f"{version}  " in out and "in development " in out
    code, out, _ = _cli(capsys, "--domain", "production", "versions", "summing")
    assert code == 0 and version not in out and "no version of summing in production" in out

    # Not promoted: production refuses to schedule it, and says how to promote it.
    add = ("schedule", "add", path, "--cron", "0 6 * * *", "--name")
    code, _, err = _cli(capsys, "--domain", "production", *add, "nightly")
    assert code == 2, err
    assert f"summing version {version} of project 'default', in development" in err
    assert f"promote summing {version} --to production" in err
    assert _cli(capsys, "--domain", "production", "schedule", "ls")[1].count("nightly") == 0

    assert _cli(capsys, "promote", "summing", version, "--to", "production")[0] == 0
    code, out, _ = _cli(capsys, "--domain", "production", "versions", "summing")
    assert f"{version}  " in out and "in development, production " in out
    code, out, err = _cli(capsys, "--domain", "production", *add, "nightly")
    assert code == 0, err
    assert "in production" in out
    # Staging never had it: refused there still; development, where it was made, takes it.
    assert _cli(capsys, "--domain", "staging", *add, "staged")[0] == 2
    assert _cli(capsys, *add, "daily")[0] == 0
