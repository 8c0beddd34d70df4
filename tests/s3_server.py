"""A real S3 API for the tests: moto's server on 127.0.0.1, on a free port.

``s3_server`` (one per test session) is the server; ``s3_env`` points this
process, and every process it starts, at it through the environment the AWS
SDK reads (credentials and ``AWS_ENDPOINT_URL``), set only for the test, and
makes a fresh bucket. A directory's ``conftest.py`` imports the fixtures.
"""

from __future__ import annotations

import json
import secrets
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "kernelflow-test", "AWS_SECRET_ACCESS_KEY": "not-a-secret"}


@dataclass(frozen=True)
class S3:
    endpoint: str
    bucket: str

    def url(self, prefix: str = "team") -> str:
        return f"s3://{self.bucket}/{prefix}"

    def client(self) -> object:
        """A client with the environment's credentials now (a fresh session: boto3's
        default one keeps the first credentials it found)."""
        import boto3

        session = boto3.session.Session()
        return session.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """The endpoint of a moto S3 server running in this process (threads), stopped at the end."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> S3:
    """Credentials and endpoint in the environment, a fresh bucket, and no configured store."""
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("KERNELFLOW_STORE", raising=False)
    s3 = S3(endpoint=s3_server, bucket=f"kf-{secrets.token_hex(4)}")
    s3.client().create_bucket(Bucket=s3.bucket)  # type: ignore[attr-defined]
    return s3


@pytest.fixture
def s3_authenticating(s3_env: S3, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3]:
    """The server checking credentials, as AWS does: only an IAM user's key is accepted.

    moto accepts any key until told otherwise; the user made here may do
    anything to S3, and becomes the environment's credentials.
    """
    import boto3
    from moto import settings

    iam = boto3.session.Session().client(
        "iam", endpoint_url=s3_env.endpoint, region_name="us-east-1"
    )
    user = f"kf-{secrets.token_hex(4)}"
    iam.create_user(UserName=user)
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
    }
    iam.put_user_policy(UserName=user, PolicyName="s3", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    monkeypatch.setattr(settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    yield s3_env
