"""The S3 server fixtures (tests/s3_server.py) for the store's tests."""

from s3_server import s3_authenticating, s3_env, s3_server  # noqa: F401 (fixtures)
