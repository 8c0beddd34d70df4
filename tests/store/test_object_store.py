"""Artifacts on an fsspec URL, against a real S3 API (moto's server on 127.0.0.1).

What a user notices: values come back equal, large ones stream in parts, a
damaged object is refused and rewritten, a write that never finished is never
read, two machines share a cache through the bucket, and a store that cannot
be used is one paragraph naming it, exit 2, before anything is written.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from s3_server import S3, free_port
from sample_flows import SIZED

from kernelflow.errors import ConfigurationError, IntegrityError, StoreError
from kernelflow.store import object_store
from kernelflow.store.artifacts import ArtifactStore
from kernelflow.store.home import Store
from kernelflow.store.object_store import FsspecBlobs, mask_url


def _objects(s3: S3, prefix: str = "team/") -> dict[str, dict[str, Any]]:
    listing = s3.client().list_objects_v2(Bucket=s3.bucket, Prefix=prefix)  # type: ignore[attr-defined]
    return {item["Key"]: item for item in listing.get("Contents", [])}


def _store(home: Path, url: str) -> ArtifactStore:
    return Store(home, url).artifacts


# --- round trips ----------------------------------------------------------------------


def test_small_values_stay_inline_and_write_nothing(s3_env: S3, tmp_path: Path) -> None:
    store = _store(tmp_path / "home", s3_env.url())
    ref = store.put({"n": 3})
    assert ref.inline is not None and store.get(ref) == {"n": 3}
    assert _objects(s3_env) == {}


def test_a_frame_round_trips_as_parquet_in_the_bucket(s3_env: S3, tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": np.arange(50_000, dtype="float64"), "k": np.arange(50_000) % 7})
    ref = _store(tmp_path / "home", s3_env.url()).put(frame)
    assert ref.format == "parquet"
    assert _objects(s3_env)[f"team/{ref.path}"]["Size"] == ref.size
    # Another process, with another home, reads it back from the bucket.
    pd.testing.assert_frame_equal(_store(tmp_path / "other", s3_env.url()).get(ref), frame)
    assert not (tmp_path / "home" / "artifacts").exists()


def test_a_large_value_streams_in_parts(
    s3_env: S3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(object_store, "BLOCK", 5 * 2**20)  # S3's smallest part
    monkeypatch.setattr(object_store, "SINGLE_PUT", 8 * 2**20)  # larger: a multipart upload
    array = np.random.default_rng(1).random(12 * 2**20 // 8)  # 12 MiB: three parts
    store = _store(tmp_path / "home", s3_env.url())
    ref = store.put(array)
    etag = _objects(s3_env)[f"team/{ref.path}"]["ETag"]
    assert etag.strip('"').endswith("-3"), etag  # S3 names a multipart object by its parts
    back = _store(tmp_path / "other", s3_env.url()).get(ref)
    assert isinstance(back, np.ndarray) and np.array_equal(back, array)


def test_a_large_pickle_round_trips_signed(s3_env: S3, tmp_path: Path) -> None:
    value = {"rows": [secrets.token_hex(16) for _ in range(200_000)]}  # ~7 MB pickled
    store = _store(tmp_path / "home", s3_env.url())
    ref = store.put(value)
    assert ref.format == "pickle" and ref.signature and ref.size > 5 * 2**20
    assert store.get(ref) == value
    assert (tmp_path / "home" / "secret.key").is_file()  # the key stays on this machine
    assert not any("secret" in key for key in _objects(s3_env))


def test_an_existing_object_is_not_written_again(
    s3_env: S3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(tmp_path / "home", s3_env.url())
    first = store.put(np.arange(10_000))

    def refuse(*args: object) -> None:
        raise AssertionError("an object already in the store was uploaded again")

    monkeypatch.setattr(FsspecBlobs, "write", refuse)
    assert store.put(np.arange(10_000)) == first


def test_memory_urls_work(tmp_path: Path) -> None:
    url = f"memory://kf-{secrets.token_hex(4)}"
    store = _store(tmp_path / "home", url)
    store.check()
    frame = pd.DataFrame({"a": [1.0, 2.0]})
    refs = [store.put(value) for value in (frame, np.arange(5000), "z" * 10_000)]
    pd.testing.assert_frame_equal(store.get(refs[0]), frame)
    assert np.array_equal(store.get(refs[1]), np.arange(5000))
    assert store.get(refs[2]) == "z" * 10_000
    assert sorted(relative for relative, _ in store.files()) == sorted(r.path for r in refs)


# --- integrity --------------------------------------------------------------------------


def test_a_corrupted_object_is_refused_removed_and_written_again(
    s3_env: S3, tmp_path: Path
) -> None:
    store = _store(tmp_path / "home", s3_env.url())
    array = np.arange(100_000)
    ref = store.put(array)
    key = f"team/{ref.path}"
    body = bytearray(s3_env.client().get_object(Bucket=s3_env.bucket, Key=key)["Body"].read())  # type: ignore[attr-defined]
    body[-1] ^= 0xFF  # same size, one byte flipped
    s3_env.client().put_object(Bucket=s3_env.bucket, Key=key, Body=bytes(body))  # type: ignore[attr-defined]

    reader = _store(tmp_path / "other", s3_env.url())
    with pytest.raises(IntegrityError, match="checksum does not match"):
        reader.get(ref)
    assert key not in _objects(s3_env)  # healed: the next put writes it afresh
    assert reader.put(array) == ref
    assert np.array_equal(reader.get(ref), array)


def test_a_truncated_object_is_refused(s3_env: S3, tmp_path: Path) -> None:
    store = _store(tmp_path / "home", s3_env.url())
    ref = store.put(np.arange(100_000))
    s3_env.client().put_object(Bucket=s3_env.bucket, Key=f"team/{ref.path}", Body=b"short")  # type: ignore[attr-defined]
    with pytest.raises(IntegrityError, match="truncated"):
        store.get(ref)


def test_a_pickle_signed_with_another_key_is_never_unpickled(
    s3_env: S3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KERNELFLOW_STORE_KEY", secrets.token_hex(32))
    ref = _store(tmp_path / "mallory", s3_env.url()).put(_Exploding("x" * 10_000))
    monkeypatch.setenv("KERNELFLOW_STORE_KEY", secrets.token_hex(32))
    with pytest.raises(IntegrityError, match="signature does not match"):
        _store(tmp_path / "alice", s3_env.url()).get(ref)


class _Exploding:
    """Unpickling it would fail loudly: the test proves it is never unpickled."""

    def __init__(self, payload: str) -> None:
        self.payload = payload

    def __setstate__(self, state: object) -> None:
        raise AssertionError("an unverified pickle was loaded")


def test_a_write_that_fails_midway_leaves_nothing(
    s3_env: S3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(object_store, "BLOCK", 5 * 2**20)
    monkeypatch.setattr(object_store, "SINGLE_PUT", 0)  # every object a multipart upload
    store = _store(tmp_path / "home", s3_env.url())
    opened = store.blobs.fs.open  # type: ignore[attr-defined]

    def failing_open(path: str, mode: str = "rb", **kwargs: Any) -> Any:
        file = opened(path, mode, **kwargs)
        written = file.write
        calls = []

        def write(data: Any) -> int:
            calls.append(1)
            if len(calls) == 3:  # after two parts went up
                raise ConnectionResetError("connection reset by peer")
            return int(written(data))

        file.write = write
        return file

    monkeypatch.setattr(store.blobs.fs, "open", failing_open)  # type: ignore[attr-defined]
    with pytest.raises(StoreError, match="connection reset"):
        store.put(np.zeros(4 * 5 * 2**20 // 8))
    assert _objects(s3_env) == {}
    uploads = s3_env.client().list_multipart_uploads(Bucket=s3_env.bucket)  # type: ignore[attr-defined]
    assert uploads.get("Uploads", []) == []  # the parts were discarded, not left behind


def test_a_put_that_fails_midway_leaves_nothing(
    s3_env: S3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(tmp_path / "home", s3_env.url())
    readinto = object_store.ChunksReader.readinto
    sent = []

    def cut(self: object, buffer: Any) -> int:
        sent.append(1)
        if len(sent) > 3:  # the connection drops after a few pieces of the body
            raise ConnectionResetError("connection reset by peer")
        return int(readinto(self, buffer))  # type: ignore[arg-type]

    monkeypatch.setattr(object_store.ChunksReader, "readinto", cut)
    with pytest.raises(StoreError, match="artifact store s3://"):
        store.put(np.zeros(2 * 2**20))
    assert _objects(s3_env) == {}


def test_an_upload_never_committed_is_never_read(s3_env: S3, tmp_path: Path) -> None:
    """A writer that died after sending parts: S3 shows no object, so the ref is a miss."""
    store = _store(tmp_path / "home", s3_env.url())
    array = np.ones(6 * 2**20 // 8)
    ref = store.put(array)
    store.delete(ref)
    dying = store.blobs.fs.open(  # type: ignore[attr-defined]
        f"{s3_env.bucket}/team/{ref.path}", "wb", autocommit=False, block_size=5 * 2**20
    )
    dying.write(b"\x93NUMPY" + bytes(6 * 2**20))
    dying.flush()  # one part is up; the writer dies here, never committing
    reader = _store(tmp_path / "other", s3_env.url())
    assert not reader.exists(ref)
    with pytest.raises(IntegrityError, match="missing"):
        reader.get(ref)
    assert reader.put(array) == ref and np.array_equal(reader.get(ref), array)


# --- bad input ------------------------------------------------------------------------

FLOW = """
import pandas as pd
from kernelflow import task, workflow


@task(cache=True)
def load(n: int) -> pd.DataFrame:
    return pd.DataFrame({"x": [float(i) for i in range(n)]})


@task(cache=True)
def describe(df: pd.DataFrame) -> dict:
    return {"rows": len(df), "labels": [f"row-{i}" for i in range(len(df))]}


@task(cache=True)
def total(df: pd.DataFrame) -> float:
    return float(df["x"].sum())


@workflow
def flow(n: int = 2000) -> tuple[dict, float]:
    df = load(n=n)
    return describe(df=df), total(df=df)
"""


def _cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kernelflow", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=180,
    )


def _assert_refused(done: subprocess.CompletedProcess[str], *, names: str, home: Path) -> None:
    """Exit 2, one paragraph naming the store, no traceback, and nothing recorded."""
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    (error,) = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert names in error and "\n  Fix: " in done.stderr
    assert not (home / "runs.sqlite").exists() and not (home / "artifacts").exists()


def test_a_missing_bucket_is_refused_before_the_run(s3_env: S3, tmp_path: Path) -> None:
    (tmp_path / "flow.py").write_text(FLOW)
    url = f"s3://no-such-{secrets.token_hex(3)}/team"
    done = _cli("--store", url, "run", "flow.py:flow", cwd=tmp_path)
    _assert_refused(done, names=url, home=tmp_path / "kernelflow-home")
    assert "does not exist" in done.stderr


def test_wrong_credentials_are_refused_and_not_shown(s3_authenticating: S3, tmp_path: Path) -> None:
    (tmp_path / "flow.py").write_text(FLOW)
    wrong = "wrong-" + secrets.token_hex(8)
    done = _cli(
        "--store",
        s3_authenticating.url(),
        "run",
        "flow.py:flow",
        cwd=tmp_path,
        env={"AWS_SECRET_ACCESS_KEY": wrong},
    )
    _assert_refused(done, names=s3_authenticating.url(), home=tmp_path / "kernelflow-home")
    assert "access denied" in done.stderr and wrong not in done.stderr
    assert _objects(s3_authenticating) == {}


def test_an_unreachable_endpoint_is_refused(s3_env: S3, tmp_path: Path) -> None:
    (tmp_path / "flow.py").write_text(FLOW)
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}", "KERNELFLOW_STORE": s3_env.url()}
    done = _cli("run", "flow.py:flow", cwd=tmp_path, env=env)
    _assert_refused(done, names=s3_env.url(), home=tmp_path / "kernelflow-home")
    assert "cannot be reached" in done.stderr


def test_secrets_in_a_url_are_masked() -> None:
    url = "s3://reader:hunter2@bucket/prefix?token=abc123&region=eu"
    assert mask_url(url) == "s3://reader:***@bucket/prefix?token=***&region=eu"
    error = ConfigurationError("x", url=mask_url(url))
    assert "hunter2" not in repr(error.fields) and "abc123" not in repr(error.fields)


def test_a_malformed_shared_key_is_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KERNELFLOW_STORE_KEY", "not-hex")
    with pytest.raises(ConfigurationError, match="KERNELFLOW_STORE_KEY") as raised:
        _store(tmp_path / "home", f"memory://kf-{secrets.token_hex(4)}").put("y" * 10_000)
    assert "not-hex" not in str(raised.value)


# --- two machines, one bucket -----------------------------------------------------------


def test_a_second_machine_gets_cache_hits_from_the_bucket(s3_env: S3, tmp_path: Path) -> None:
    """Two processes, two homes, one bucket and one team key; the run database is one
    SQLite file (the second home's ``runs.sqlite`` is a link to the first's), standing
    in for a shared database: the cache index has to be shared for hits."""
    key = secrets.token_hex(32)
    first, second = tmp_path / "first", tmp_path / "second"
    for machine in (first, second):
        machine.mkdir()
        (machine / "flow.py").write_text(FLOW)
    env = {"KERNELFLOW_STORE": s3_env.url(), "KERNELFLOW_STORE_KEY": key}

    ran = _cli("run", "flow.py:flow", cwd=first, env={**env, "KERNELFLOW_HOME": str(first / "kf")})
    assert ran.returncode == 0, ran.stderr
    assert "total = 1999000.0" in ran.stdout.replace("o1 = ", "total = ")
    stored = [key for key in _objects(s3_env) if key.startswith("team/artifacts/")]
    assert len(stored) >= 2  # the frame (Parquet) and the pickled dict; the float is inline
    assert not (first / "kf" / "artifacts").exists()

    (second / "kf").mkdir()
    (second / "kf" / "runs.sqlite").symlink_to(first / "kf" / "runs.sqlite")
    again = _cli(
        "run", "flow.py:flow", cwd=second, env={**env, "KERNELFLOW_HOME": str(second / "kf")}
    )
    assert again.returncode == 0, again.stderr
    for task in ("load", "describe", "total"):
        assert f"{task} cached" in again.stderr, again.stderr
    assert again.stdout.split("run_id")[0] == ran.stdout.split("run_id")[0]
    assert not (second / "kf" / "artifacts").exists()
    assert not (second / "kf" / "secret.key").exists()  # the team key came from the env


def test_a_run_on_a_memory_store_is_cached_there(
    tmp_path: Path, store_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fsspec

    import kernelflow

    name = f"kf-{secrets.token_hex(4)}"
    monkeypatch.setenv("KERNELFLOW_STORE", f"memory://{name}")
    (tmp_path / "flow.py").write_text(FLOW)
    monkeypatch.chdir(tmp_path)
    first = kernelflow.run("flow.py:flow")
    assert first.status == "succeeded" and first.outputs["o1"] == 1999000.0
    stored = fsspec.filesystem("memory").find(f"/{name}/artifacts")
    assert len(stored) >= 2 and not (store_home / "artifacts").exists()
    again = kernelflow.run("flow.py:flow")
    assert {run.status for run in again.tasks.values()} == {"cached"}
    assert again.outputs["o0"] == first.outputs["o0"]


def test_the_store_flag_wins_over_the_variable(s3_env: S3, tmp_path: Path) -> None:
    (tmp_path / "flow.py").write_text(FLOW)
    env = {"KERNELFLOW_STORE": f"s3://no-such-{secrets.token_hex(3)}/team"}
    done = _cli("--store", s3_env.url(), "run", "flow.py:flow", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert any(key.startswith("team/artifacts/") for key in _objects(s3_env))


def test_a_url_no_file_system_knows_is_refused(tmp_path: Path) -> None:
    (tmp_path / "flow.py").write_text(FLOW)
    done = _cli("--store", "nosuchscheme://team/kf", "run", "flow.py:flow", cwd=tmp_path)
    _assert_refused(done, names="nosuchscheme://team/kf", home=tmp_path / "kernelflow-home")


CHECKPOINTED = """
from kernelflow import current_context, task, workflow


@task
def count(n: int) -> int:
    checkpoint = current_context().checkpoint
    state = checkpoint.restore() or {"done": 0, "pad": "x" * 10_000}
    checkpoint.save({**state, "done": n})
    return n


@workflow
def counted(n: int = 5) -> int:
    return count(n=n)
"""


def test_a_loky_workers_checkpoint_goes_to_the_bucket(s3_env: S3, tmp_path: Path) -> None:
    """Worker processes open the store the command names (they inherit --store)."""
    (tmp_path / "flow.py").write_text(CHECKPOINTED)
    done = _cli("--store", s3_env.url(), "run", "flow.py:counted", "--parallel", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert any(key.endswith(".pkl") for key in _objects(s3_env))  # the 10 KB state, pickled
    assert not (tmp_path / "kernelflow-home" / "artifacts").exists()


def test_gc_removes_from_the_bucket_only_what_nothing_kept_refers_to(
    s3_env: S3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kernelflow
    from kernelflow import api

    monkeypatch.setenv("KERNELFLOW_STORE", s3_env.url())
    (tmp_path / "flow.py").write_text(SIZED)
    monkeypatch.chdir(tmp_path)
    for n in (1, 2):
        assert kernelflow.run("flow.py:sized", {"n": n}).status == "succeeded"
    assert len(_objects(s3_env)) == 4  # fill's two (cached), tail's two
    # As if they were written an hour ago: gc keeps what was written in its last seconds.
    monkeypatch.setattr(object_store, "_modified", lambda info: 0.0)
    report = api.gc(keep_runs=1)
    assert report.artifacts == 1 and len(_objects(s3_env)) == 3
    again = kernelflow.run("flow.py:sized", {"n": 1})
    assert again.tasks["fill"].status == "cached"


RETRIED = """
from kernelflow import current_context, task, workflow
from kernelflow.errors import RecoverableError


@task(retries=1)
def resumable(n: int) -> int:
    checkpoint = current_context().checkpoint
    state = checkpoint.restore()
    if state is None:  # the first attempt saves its state, then fails
        checkpoint.save({"done": n, "pad": "x" * 10_000})
        raise RecoverableError("the first attempt stops here")
    return state["done"] * 2


@workflow
def retried(n: int = 4) -> int:
    return resumable(n=n)
"""


def test_a_checkpoint_is_kept_in_the_bucket_so_any_worker_finds_it(
    s3_env: S3, tmp_path: Path
) -> None:
    """Its pointer is beside the artifacts, not in the home of the machine that ran the
    attempt: a retry on another worker, or a resume elsewhere, reads it; gc removes it
    with its run."""
    (tmp_path / "flow.py").write_text(RETRIED)
    store = ("--store", s3_env.url())
    done = _cli(*store, "run", "flow.py:retried", "--parallel", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "o0 = 8" in done.stdout  # the second attempt restored the first one's state
    pointers = [key for key in _objects(s3_env) if key.startswith("team/checkpoints/")]
    assert len(pointers) == 1 and pointers[0].endswith("/resumable.json"), pointers
    assert not list(tmp_path.rglob("checkpoints"))  # nothing in any home
    assert _cli(*store, "gc", "--keep-runs", "0", cwd=tmp_path).returncode == 0
    assert not [key for key in _objects(s3_env) if key.startswith("team/checkpoints/")]
