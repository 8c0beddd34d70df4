"""Figure 12: a 1e6 x 10 DataFrame through an object store, kernelflow against plain s3fs.

Both sides talk to the same S3 server (moto's, on 127.0.0.1, in a process of
its own), interleaved. kernelflow's round trip is ``put(frame)`` then ``get(ref)``:
encoding to Parquet, a checksum, a transactional upload, a ranged download, the
checksum again and decoding. The baseline is a plain ``s3fs`` ``pipe_file`` +
``cat_file`` of the very Parquet bytes kernelflow stored: transfer only, no
encoding, no checks. The target (issue 17): kernelflow within 1.3x of it.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from benchmarks.common import Config, Row, Section, interleaved, isolated_home, timed, verdict

TARGET = 1.3
KERNELFLOW = "kernelflow put + get (frame in, frame out)"
PLAIN = "plain s3fs pipe_file + cat_file (the same Parquet bytes)"


def run(config: Config) -> Section:
    from benchmarks.cache_frame import make_frame

    rows = 10_000 if config.quick else 1_000_000
    title = f"Object-store round trip of a {rows:,} x 10 DataFrame (local S3 server)"
    target = f"<= {TARGET}x plain s3fs put+get of the same bytes"
    try:
        import moto.server  # noqa: F401
        import s3fs  # noqa: F401
    except ImportError as error:
        absent = [Row(KERNELFLOW, None, "ms", note=str(error)), Row(PLAIN, None, "ms")]
        return Section("object_store", title, target, absent, "n/a", "absent (no s3fs/moto)")
    frame = make_frame(rows)
    with _s3_server() as endpoint, isolated_home(config, "object_store") as home:
        timings, size = _measure(config, endpoint, home, frame)
    seconds = timings.medians()
    ours, plain = seconds.get(KERNELFLOW), seconds.get(PLAIN)
    paired = timings.paired_ratios(KERNELFLOW, PLAIN)
    share = sorted(paired)[len(paired) // 2] if paired else None
    ok = None if share is None else share <= TARGET
    return Section(
        "object_store",
        title,
        target,
        [
            Row(KERNELFLOW, None if ours is None else ours * 1e3, "ms", share),
            Row(PLAIN, None if plain is None else plain * 1e3, "ms", None),
        ],
        verdict(ok),
        f"{share:.2f}x plain s3fs" if share else "absent",
        notes=[
            f"The object: {size / 1e6:.1f} MB of Parquet (snappy) under s3://bucket/kf/artifacts/.",
            "Ratio: kernelflow / plain in each round (back to back), median over the rounds.",
            "kernelflow's side also encodes and decodes the frame and checks its checksum; "
            "the baseline moves bytes only. kernelflow reads with one GET streamed into one "
            "buffer, which is quicker than s3fs's cat_file (it joins the body's pieces). "
            "Before each round the object is deleted, so "
            "kernelflow uploads it again (an object already there is never rewritten).",
            "The server is moto, in its own process on this machine: absolute figures say "
            "little about AWS; the ratio is the figure.",
        ],
    )


def _measure(config: Config, endpoint: str, home: Any, frame: Any) -> tuple[Any, int]:
    import s3fs

    from kernelflow.store.artifacts import ArtifactStore
    from kernelflow.store.object_store import FsspecBlobs

    bucket = f"bench-{secrets.token_hex(4)}"
    plain = s3fs.S3FileSystem(skip_instance_cache=True)
    plain.mkdir(bucket)
    store = ArtifactStore(home, blobs=FsspecBlobs(f"s3://{bucket}/kf"))
    ref = store.put(frame)
    payload = plain.cat_file(f"{bucket}/kf/{ref.path}")

    def kernelflow_round(_: int) -> float:
        store.delete(ref)
        return timed(lambda: store.get(store.put(frame)))

    def plain_round(_: int) -> float:
        path = f"{bucket}/plain/frame.parquet"

        def trip() -> None:
            plain.pipe_file(path, payload)
            if len(plain.cat_file(path)) != len(payload):
                raise AssertionError("plain round trip lost bytes")

        return timed(trip)

    cases = {KERNELFLOW: kernelflow_round, PLAIN: plain_round}
    return interleaved(cases, config.reps(), warmup=config.warmups), len(payload)


@contextlib.contextmanager
def _s3_server() -> Iterator[str]:
    """moto's S3 server in a process of its own (as a real server would be: it does not
    share this process's GIL), on a free port, with throwaway credentials in the
    environment."""
    from kernelflow._core.environ import environment_variable

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    settings = {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
    }
    try:
        _wait_for(port, server)
        with contextlib.ExitStack() as stack:
            for name, value in settings.items():
                stack.enter_context(environment_variable(name, value))
            yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_for(port: int, server: subprocess.Popen[bytes], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and server.poll() is None:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"moto's S3 server did not start on port {port}")
