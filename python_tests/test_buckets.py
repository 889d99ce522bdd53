"""Bucket stores on a real S3 protocol server (moto's, with conditional writes,
run as a subprocess on loopback), and the lease that keeps one opener per store.

One bucket per session, a unique prefix per test; every store is closed before
the server stops."""

from __future__ import annotations

import contextlib
import itertools
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
from hypothesis import given, settings
from hypothesis import strategies as st

import anda
from anda.testing import dump_store
from anda.testing import strategies as kst

SECRET = "s3cr3t-" + uuid.uuid4().hex
UPSERT = 'UPSERT CONCEPT ?p { MATCH { type: "Person", key: :key } SET FIELDS { name: :name } }'
FIND = 'FIND(?p.name) WHERE { ?p {type: "Person", key: :key} }'


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def _moto(**env: str) -> Iterator[str]:
    """moto's S3 server (a test requirement, requirements/test.in) in its own
    process; its URL."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **env},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=2).close()
                break
            except OSError:
                assert server.poll() is None, "moto's server did not start"
                assert time.monotonic() < deadline, "moto's server did not answer"
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="session")
def endpoint() -> Iterator[str]:
    with _moto() as url:
        yield url


@pytest.fixture(scope="session")
def session_bucket(endpoint: str) -> str:
    name = "anda-" + uuid.uuid4().hex[:12]
    _s3(endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture
def bucket(session_bucket: str) -> str:
    """The session's bucket; each test works under a prefix of its own."""
    return session_bucket


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    return f"{request.node.name.replace('[', '-').rstrip(']')}-{uuid.uuid4().hex[:8]}"


def _s3(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="other-client",
        aws_secret_access_key="other-client",
    )


def _listing(endpoint: str, bucket: str, prefix: str) -> dict[str, str]:
    """Every object under ``prefix``, with its ETag."""
    pages = _s3(endpoint).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {item["Key"]: item["ETag"] for page in pages for item in page.get("Contents", [])}


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


def test_a_bucket_store_keeps_what_it_was_given(endpoint: str, bucket: str, prefix: str) -> None:
    url = f"s3://{bucket}/{prefix}/ada"
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
    with anda.Nexus(f"s3://{bucket}/{prefix}/bob", storage_options=_options(endpoint)) as other:
        assert _name(other, "ada") == []


def test_one_opener_at_a_time(endpoint: str, bucket: str, prefix: str) -> None:
    url = f"s3://{bucket}/{prefix}"
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


WRITER = textwrap.dedent(
    """
    import sys, anda
    url, options = sys.argv[1], dict(arg.split("=", 1) for arg in sys.argv[2:])
    nexus = anda.Nexus(url, storage_options=options, _lease_ttl=2.0)
    for i in range(100_000):
        nexus.execute_kip({upsert!r}, {{"key": f"k{{i}}", "name": f"n{{i}}"}})
        print(f"k{{i}}", flush=True)  # acknowledged
    """
).format(upsert=UPSERT)


def test_a_killed_writers_lease_expires_and_every_acknowledged_write_is_there(
    endpoint: str, bucket: str, prefix: str
) -> None:
    url = f"s3://{bucket}/{prefix}"
    options = _options(endpoint)
    argv = [sys.executable, "-c", WRITER, url, *(f"{k}={v}" for k, v in options.items())]
    writer = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    acknowledged = []
    try:
        assert writer.stdout is not None
        for line in writer.stdout:
            acknowledged.append(line.strip())
            if len(acknowledged) == 5:
                # Held by a live process elsewhere: refused here, read-only too.
                for readonly in (False, True):
                    with pytest.raises(anda.StoreLockedError):
                        anda.Nexus(url, storage_options=options, readonly=readonly)
            if len(acknowledged) >= 12:
                break
        writer.kill()  # in the middle of its next write
        writer.wait(timeout=30)
    finally:
        writer.kill()
    deadline = time.monotonic() + 30
    while True:
        try:
            nexus = anda.Nexus(url, storage_options=options)
            break
        except anda.StoreLockedError:
            assert time.monotonic() < deadline, "the dead writer's lease never expired"
            time.sleep(0.5)
    with nexus:
        for key in acknowledged:
            assert _name(nexus, key) == ["n" + key[1:]], key
        assert nexus.verify().ok


def test_read_only_opens_and_dry_runs_change_nothing_in_the_bucket(
    endpoint: str, bucket: str, prefix: str
) -> None:
    url = f"s3://{bucket}/{prefix}"
    with anda.Nexus(url, storage_options=_options(endpoint)) as nexus:
        nexus.execute_kip(UPSERT, {"key": "ada", "name": "Ada"})
    before = _listing(endpoint, bucket, prefix)
    assert f"{prefix}/anda_db.lease" not in before  # closing removed it
    with anda.Nexus(url, storage_options=_options(endpoint), readonly=True) as nexus:
        assert _name(nexus, "ada") == ["Ada"]
    assert _listing(endpoint, bucket, prefix) == before
    with anda.Nexus(url, storage_options=_options(endpoint)) as nexus:
        opened = _listing(endpoint, bucket, prefix)  # now with this opener's lease
        nexus.execute_kip(UPSERT, {"key": "bob", "name": "Bob"}, dry_run=True)
        after = _listing(endpoint, bucket, prefix)
        assert _name(nexus, "bob") == []
    # Nothing stored changed. The engine does write a mutation-intent record
    # for a dry run (its own bookkeeping: no element, index or schema object).
    assert {key: after[key] for key in opened} == opened
    assert all("/mutation_intents/" in key for key in set(after) - set(opened))


def test_a_missing_bucket_is_a_typed_error(endpoint: str) -> None:
    started = time.monotonic()
    with pytest.raises(anda.StoreError, match="anda-no-such-bucket"):
        anda.Nexus("s3://anda-no-such-bucket/x", storage_options=_options(endpoint))
    assert time.monotonic() - started < 60


# Opening a bucket store costs a few round trips to the server; a tenth of the
# profile's examples.
@settings(max_examples=max(3, settings.default.max_examples // 10), deadline=None)
@given(upserts=st.lists(kst.upserts(), min_size=1, max_size=4))
def test_bucket_dump_is_the_same_after_reopen(
    endpoint: str, session_bucket: str, upserts: list[kst.Upsert]
) -> None:
    url = f"s3://{session_bucket}/property-{uuid.uuid4().hex[:12]}"
    with anda.Nexus(url, storage_options=_options(endpoint)) as nexus:
        for upsert in upserts:
            nexus.execute_kip(*upsert.render())
        before = dump_store(nexus)
    with anda.Nexus(url, storage_options=_options(endpoint), readonly=True) as reopened:
        assert dump_store(reopened) == before


def test_a_holder_that_loses_its_lease_stops_writing(
    endpoint: str, bucket: str, prefix: str
) -> None:
    url = f"s3://{bucket}/{prefix}"
    nexus = anda.Nexus(url, storage_options=_options(endpoint), _lease_ttl=1.5)
    nexus.execute_kip(UPSERT, {"key": "before", "name": "Before"})
    # Someone rewrites the lease object behind its back (a forced takeover).
    thief = _s3(endpoint)
    thief.put_object(Bucket=bucket, Key=f"{prefix}/anda_db.lease", Body=b'{"holder": "thief"}')
    deadline = time.monotonic() + 15
    # A new key each time: the same upsert again changes nothing and writes nothing.
    for attempt in itertools.count():
        try:
            nexus.execute_kip(UPSERT, {"key": f"after-{attempt}", "name": "After"})
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
    lease = thief.get_object(Bucket=bucket, Key=f"{prefix}/anda_db.lease")["Body"].read()
    assert lease == b'{"holder": "thief"}'


def test_storage_option_errors(endpoint: str, bucket: str, prefix: str, tmp_path: Any) -> None:
    url = f"s3://{bucket}/{prefix}"
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
    """Within the 20-second bound opening gives itself."""
    closed = f"http://127.0.0.1:{_free_port()}"
    started = time.monotonic()
    with pytest.raises(anda.StoreError) as failed:
        anda.Nexus(f"s3://{bucket}/nowhere", storage_options=_options(closed))
    assert time.monotonic() - started < 60
    assert SECRET not in str(failed.value)


def test_refused_credentials_fail_fast_saying_so() -> None:
    """A server that checks credentials (moto's, with IAM enforced from the
    first request) refuses ours: a typed error that says so, without the secret."""
    with _moto(INITIAL_NO_AUTH_ACTION_COUNT="0") as checking:
        started = time.monotonic()
        with pytest.raises(anda.StoreError) as refused:
            anda.Nexus("s3://anda-any/x", storage_options=_options(checking))
        assert time.monotonic() - started < 60
    message = str(refused.value)
    assert "refused these credentials" in message
    assert "InvalidAccessKeyId" in message
    assert SECRET not in message


def test_no_credentials_fails_fast_saying_what_is_missing(
    endpoint: str, bucket: str, prefix: str
) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    code = textwrap.dedent(
        f"""
        import anda
        try:
            anda.Nexus("s3://{bucket}/{prefix}", storage_options={{
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


def test_the_command_line_and_anda_db_take_a_bucket_url(
    endpoint: str, bucket: str, prefix: str, tmp_path: Any
) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env |= {
        "AWS_ENDPOINT": endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "anda-test",
        "AWS_SECRET_ACCESS_KEY": SECRET,
    }
    url = f"s3://{bucket}/{prefix}"

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
    # A copy down to a directory, from the shell, with the same environment.
    copied = anda_cli("copy", "--no-progress", url, str(tmp_path / "down"))
    assert copied.returncode == 0, copied.stderr
    assert "reads back equal" in copied.stdout
    with anda.Nexus(tmp_path / "down", readonly=True) as down:
        assert _name(down, "cli") == ["Cli"]


def test_copies_between_a_directory_and_a_bucket(
    endpoint: str, bucket: str, prefix: str, tmp_path: Any
) -> None:
    """Object for object, both ways, checked with dump_store: ids and keys
    come along, and the copy is a store that goes on working."""
    options = _options(endpoint)
    with anda.Nexus(tmp_path / "src") as nexus:
        nexus.execute_kip(UPSERT, {"key": "ada", "name": "Ada"})
        nexus.bulk_write(
            [anda.bulk.Upsert("Person", f"p{i}", f"P{i}") for i in range(30)]
            + [anda.bulk.Relate(("Person", "ada"), "knows", ("Person", "p1"))]
        )
        expected = dump_store(nexus)
    url = f"s3://{bucket}/{prefix}/copy"
    seen: list[tuple[int, int]] = []
    up = anda.copy_store(
        tmp_path / "src",
        url,
        destination_storage_options=options,
        progress=lambda done, total: seen.append((done, total)),
    )
    stored = {key: etag for key, etag in _listing(endpoint, bucket, f"{prefix}/copy/").items()}
    assert up.files == sum(1 for key in stored if key.startswith(f"{prefix}/copy/anda_db/"))
    assert seen[-1] == (up.bytes, up.bytes)
    assert not any(key.endswith(".lease") for key in stored)  # released when done
    with anda.Nexus(url, storage_options=options, readonly=True) as copy:
        assert dump_store(copy) == expected

    # A destination that holds a store is left as it is, unless asked.
    with pytest.raises(anda.StoreError, match="already holds a store"):
        anda.copy_store(tmp_path / "src", url, destination_storage_options=options)
    assert _listing(endpoint, bucket, f"{prefix}/copy/") == stored

    # Back down to a directory, which goes on as a store of its own.
    down = anda.copy_store(url, tmp_path / "down", source_storage_options=options)
    assert (down.files, down.bytes) == (up.files, up.bytes)
    with anda.Nexus(tmp_path / "down") as nexus:
        assert dump_store(nexus) == expected
        nexus.execute_kip(UPSERT, {"key": "new", "name": "New"})
    anda.copy_store(tmp_path / "down", url, destination_storage_options=options, overwrite=True)
    with anda.Nexus(url, storage_options=options, readonly=True) as copy:
        assert _name(copy, "new") == ["New"]
        assert _name(copy, "ada") == ["Ada"]

    # An open store is neither source nor destination.
    with anda.Nexus(url, storage_options=options):
        with pytest.raises(anda.StoreLockedError):
            anda.copy_store(url, tmp_path / "other", source_storage_options=options)
        with pytest.raises(anda.StoreLockedError):
            anda.copy_store(
                tmp_path / "src", url, destination_storage_options=options, overwrite=True
            )
    with pytest.raises(ValueError, match="same store"):
        anda.copy_store(url, url + "/")


def test_a_read_only_open_never_creates_a_bucket_store(
    endpoint: str, bucket: str, prefix: str
) -> None:
    url = f"s3://{bucket}/{prefix}/nothing"
    with pytest.raises(anda.StoreError, match="holds no store"):
        anda.Nexus(url, storage_options=_options(endpoint), readonly=True)
    with pytest.raises(anda.StoreError, match="holds no store"):
        anda.copy_store(url, f"s3://{bucket}/{prefix}/b", source_storage_options=_options(endpoint))
    assert _listing(endpoint, bucket, f"{prefix}/") == {}
