"""Bucket stores on a real S3 protocol server (moto's, with conditional writes),
and the lease that keeps one opener per store."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import boto3  # moto's own dependency: a second, independent S3 client
import pytest
from moto import server as moto_server  # a test requirement (requirements/test.in)

import anda

SECRET = "s3cr3t-" + uuid.uuid4().hex
UPSERT = 'UPSERT CONCEPT ?p { MATCH { type: "Person", key: :key } SET FIELDS { name: :name } }'
FIND = 'FIND(?p.name) WHERE { ?p {type: "Person", key: :key} }'


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def bucket(endpoint: str) -> str:
    name = "anda-" + uuid.uuid4().hex[:12]
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/{name}", method="PUT")).close()
    return name


def _options(endpoint: str) -> dict[str, Any]:
    return {
        "aws_endpoint": endpoint,
        "aws_allow_http": True,
        "aws_region": "us-east-1",
        "aws_access_key_id": "anda-test",
        "aws_secret_access_key": SECRET,
    }


def _name(nexus: anda.Nexus, key: str) -> Any:
    return nexus.execute_kip(FIND, {"key": key})["results"][0]["result"]


def test_a_bucket_store_keeps_what_it_was_given(endpoint: str, bucket: str) -> None:
    url = f"s3://{bucket}/agents/ada"
    with anda.Nexus(url, storage_options=_options(endpoint)) as nexus:
        assert nexus.path == url
        nexus.execute_kip(UPSERT, {"key": "ada", "name": "Ada"})
        nexus.bulk_write([anda.bulk.Upsert("Person", f"p{i}", f"P{i}") for i in range(20)])
        assert SECRET not in repr(nexus)
    with anda.Nexus(url, storage_options=_options(endpoint), readonly=True) as nexus:
        assert _name(nexus, "ada") == ["Ada"]
        assert _name(nexus, "p19") == ["P19"]
        assert nexus.verify().ok
    # Another prefix in the same bucket is another store.
    with anda.Nexus(f"s3://{bucket}/agents/bob", storage_options=_options(endpoint)) as other:
        assert _name(other, "ada") == []


def test_one_opener_at_a_time(endpoint: str, bucket: str) -> None:
    url = f"s3://{bucket}/shared"
    with anda.Nexus(url, storage_options=_options(endpoint)):
        for readonly in (False, True):
            with pytest.raises(anda.StoreLockedError) as locked:
                anda.Nexus(url, storage_options=_options(endpoint), readonly=readonly)
            message = str(locked.value)
            assert f"pid {os.getpid()}" in message
            assert "second" in message
            assert SECRET not in message
        # Another database name in the same place is another store.
        with anda.Nexus(url, name="other", storage_options=_options(endpoint)):
            pass
    # Closing released it: the next opener gets it at once.
    with anda.Nexus(url, storage_options=_options(endpoint)) as nexus:
        nexus.execute_kip("DESCRIBE PRIMER")


HOLDER = textwrap.dedent(
    """
    import sys, anda
    url, options = sys.argv[1], dict(arg.split("=", 1) for arg in sys.argv[2:])
    nexus = anda.Nexus(url, storage_options=options, _lease_ttl=2.0)
    nexus.execute_kip({upsert!r}, {{"key": "held", "name": "Held"}})
    print("holding", flush=True)
    sys.stdin.read()  # until killed
    """
).format(upsert=UPSERT)


def test_a_dead_holders_lease_expires_and_is_taken_over(endpoint: str, bucket: str) -> None:
    url = f"s3://{bucket}/crashed"
    options = _options(endpoint)
    argv = [sys.executable, "-c", HOLDER, url, *(f"{k}={v}" for k, v in options.items())]
    holder = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(anda.StoreLockedError):
            anda.Nexus(url, storage_options=options)
        holder.kill()
        holder.wait(timeout=30)
    finally:
        holder.kill()
    deadline = time.monotonic() + 30
    while True:
        try:
            nexus = anda.Nexus(url, storage_options=options)
            break
        except anda.StoreLockedError:
            assert time.monotonic() < deadline, "the dead holder's lease never expired"
            time.sleep(0.5)
    with nexus:
        assert _name(nexus, "held") == ["Held"]


def test_a_holder_that_loses_its_lease_stops_writing(endpoint: str, bucket: str) -> None:
    url = f"s3://{bucket}/stolen"
    nexus = anda.Nexus(url, storage_options=_options(endpoint), _lease_ttl=1.5)
    nexus.execute_kip(UPSERT, {"key": "before", "name": "Before"})
    # Someone rewrites the lease object behind its back (a forced takeover).
    thief = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="thief",
        aws_secret_access_key="thief",
    )
    thief.put_object(Bucket=bucket, Key="stolen/anda_db.lease", Body=b'{"holder": "thief"}')
    deadline = time.monotonic() + 15
    while True:
        try:
            nexus.execute_kip(UPSERT, {"key": "after", "name": "After"})
        except anda.AndaError as err:
            assert "no longer holds the lease" in str(err)
            break
        assert time.monotonic() < deadline, "writes went on after the lease was lost"
        time.sleep(0.2)
    # Closing writes nothing either: if it had something to flush, it says why.
    try:
        nexus.close()
    except anda.StoreError as err:
        assert "no longer holds the lease" in str(err)
    assert nexus.closed
    # The thief's lease is left alone.
    lease = thief.get_object(Bucket=bucket, Key="stolen/anda_db.lease")["Body"].read()
    assert lease == b'{"holder": "thief"}'


def test_storage_option_errors(endpoint: str, bucket: str, tmp_path: Any) -> None:
    url = f"s3://{bucket}/options"
    with pytest.raises(ValueError, match="aws_endpoint_typo"):
        anda.Nexus(url, storage_options={**_options(endpoint), "aws_endpoint_typo": "x"})
    with pytest.raises(ValueError, match="conditional puts"):
        anda.Nexus(url, storage_options={**_options(endpoint), "aws_conditional_put": "disabled"})
    with pytest.raises(TypeError, match="directory"):
        anda.Nexus(tmp_path, storage_options=_options(endpoint))
    with pytest.raises(TypeError, match="in-memory"):
        anda.Nexus(None, storage_options=_options(endpoint))
    with pytest.raises(TypeError, match="mapping"):
        anda.Nexus(url, storage_options=[("aws_region", "x")])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="credentials"):
        anda.Nexus(f"s3://user:{SECRET}@{bucket}/x", storage_options=_options(endpoint))
    for scheme in ("gs", "az"):
        with pytest.raises(ValueError, match="aws_region"):
            anda.Nexus(f"{scheme}://{bucket}/x", storage_options={"aws_region": "us-east-1"})


def test_an_unreachable_store_fails_with_a_typed_error_and_no_secret(bucket: str) -> None:
    closed = f"http://127.0.0.1:{_free_port()}"
    started = time.monotonic()
    with pytest.raises(anda.StoreError) as failed:
        anda.Nexus(f"s3://{bucket}/nowhere", storage_options=_options(closed))
    assert time.monotonic() - started < 120
    assert SECRET not in str(failed.value)


def test_no_credentials_fails_fast_saying_what_is_missing(endpoint: str, bucket: str) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    code = textwrap.dedent(
        f"""
        import anda
        try:
            anda.Nexus("s3://{bucket}/x", storage_options={{
                "aws_endpoint": "{endpoint}", "aws_allow_http": True, "aws_region": "us-east-1"}})
        except anda.StoreError as err:
            print(type(err).__name__, err)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("StoreError"), proc.stdout + proc.stderr
    assert "credentials" in proc.stdout


def test_the_command_line_and_anda_db_take_a_bucket_url(endpoint: str, bucket: str) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env |= {
        "AWS_ENDPOINT": endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "anda-test",
        "AWS_SECRET_ACCESS_KEY": SECRET,
    }
    url = f"s3://{bucket}/cli"

    def anda_cli(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "anda", *args],
            env=env | extra,
            capture_output=True,
            text=True,
            timeout=120,
        )

    wrote = anda_cli("--db", url, "--params", '{"key": "cli", "name": "Cli"}', UPSERT)
    assert wrote.returncode == 0, wrote.stderr
    read = anda_cli("--compact", "--params", '{"key": "cli"}', FIND, ANDA_DB=url)
    assert read.returncode == 0, read.stderr
    assert '"result": ["Cli"]' in read.stdout
    assert SECRET not in wrote.stdout + wrote.stderr + read.stdout + read.stderr
