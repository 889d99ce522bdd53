"""Threads, asyncio, fork, Ctrl-C and panics."""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import IO

import pytest

import anda
from anda import _anda
from anda.testing import open_with_faults
from conftest import FIND_ALL_PEOPLE, FIND_PERSON_NAME, UPSERT_PERSON, people, result, run_python


def test_threads_hammering_one_store(nexus: anda.Nexus) -> None:
    errors: list[BaseException] = []
    threads_count, per_thread = 8, 25

    def worker(n: int) -> None:
        try:
            for i in range(per_thread):
                key = f"t{n}-{i}"
                nexus.execute_kip(UPSERT_PERSON, {"key": key, "name": key})
                assert result(nexus.execute_kip(FIND_PERSON_NAME, {"key": key})) == [key]
        except BaseException as err:  # noqa: BLE001 - handed to the main thread
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(people(nexus)) == threads_count * per_thread


def test_engine_calls_fit_a_thread_with_a_small_stack() -> None:
    """Commands are polled on the calling thread, but not on its own stack:
    the engine's futures need more than a small thread stack holds."""
    code = f"""
import threading
import anda

def writes(prefix):
    return [({UPSERT_PERSON!r}, {{"key": f"{{prefix}}{{i}}", "name": prefix}}) for i in range(50)]

def work():
    with anda.Nexus() as nexus:
        nexus.execute_kip(writes("s"))
        nexus.bulk_write(writes("b"))
        found = nexus.execute_kip({FIND_ALL_PEOPLE!r})
        assert len(found["results"][0]["result"]) == 100, found
        assert nexus.execute_kip("DESCRIBE PRIMER")["status"] == "succeeded"
    print("ok", flush=True)

threading.stack_size(64 * 1024)
thread = threading.Thread(target=work)
thread.start()
thread.join()
"""
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["ok"], proc.stderr


def test_gil_is_released_while_the_engine_works(nexus: anda.Nexus) -> None:
    """A pure-Python thread keeps running while another thread is in the engine."""
    ticks = 0
    stop = threading.Event()

    def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1

    batch = [(UPSERT_PERSON, {"key": f"g{i}", "name": "g"}) for i in range(200)]
    thread = threading.Thread(target=ticker)
    thread.start()
    try:
        before = ticks
        nexus.execute_kip(batch)
        during = ticks - before
    finally:
        stop.set()
        thread.join()
    assert during > 0


def test_async_call_gives_the_sync_result(nexus: anda.Nexus) -> None:
    async def main() -> tuple[dict, dict]:
        await nexus.execute_kip_async(UPSERT_PERSON, {"key": "as", "name": "Async"})
        found = await nexus.execute_kip_async(FIND_PERSON_NAME, {"key": "as"})
        return found, nexus.execute_kip(FIND_PERSON_NAME, {"key": "as"})

    found, sync = asyncio.run(main())
    assert result(found) == ["Async"]
    assert found["results"] == sync["results"]


def test_async_calls_run_concurrently_without_blocking_the_loop(nexus: anda.Nexus) -> None:
    async def main() -> int:
        beats = 0

        async def heartbeat() -> None:
            nonlocal beats
            while True:
                beats += 1
                await asyncio.sleep(0)

        beat = asyncio.create_task(heartbeat())
        calls = [
            nexus.execute_kip_async(UPSERT_PERSON, {"key": f"c{i}", "name": "c"}) for i in range(50)
        ]
        responses = await asyncio.gather(*calls)
        beat.cancel()
        assert all(r["status"] == "succeeded" for r in responses)
        return beats

    assert asyncio.run(main()) > 0
    assert len(people(nexus)) == 50


def test_async_errors_are_typed(nexus: anda.Nexus) -> None:
    async def main() -> None:
        with pytest.raises(anda.KipSyntaxError):
            await nexus.execute_kip_async("FIND(?x WHERE")
        with pytest.raises(ValueError, match=r"parameters\['key'\]"):
            await nexus.execute_kip_async(FIND_PERSON_NAME, {"key": float("nan")})
        inbox = anda._awaiting._inbox(asyncio.get_running_loop())
        assert inbox is not None
        assert not inbox._waiting  # the refused call left nothing registered

    asyncio.run(main())


def test_async_cancellation_leaves_the_store_usable(nexus: anda.Nexus) -> None:
    async def main() -> None:
        batch = [(UPSERT_PERSON, {"key": f"x{i}", "name": "x"}) for i in range(256)]
        task = asyncio.create_task(nexus.execute_kip_async(batch))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        inbox = anda._awaiting._inbox(asyncio.get_running_loop())
        assert inbox is not None
        assert not inbox._waiting  # the cancelled call is forgotten
        assert (await nexus.execute_kip_async("DESCRIBE PRIMER"))["status"] == "succeeded"

    asyncio.run(main())


def test_a_write_cancelled_mid_commit_leaves_a_store_that_flushes_and_closes(
    tmp_path: Path,
) -> None:
    """A storage delay holds the commit half-way when the task is cancelled:
    the collection handles it held are poisoned, and flush and close must
    recover them (the interrupted commit is replayed or discarded, never torn)."""
    nexus, faults = open_with_faults(tmp_path / "store")
    batch = [(UPSERT_PERSON, {"key": f"c{i}", "name": "c"}) for i in range(64)]
    held = "kip_commit_log/mutation_intents"  # the redo row being removed: mid-commit
    faults.fail("put", "delay", path_contains=held, delay=2.0, times=1)

    async def main() -> None:
        task = asyncio.create_task(nexus.execute_kip_async(batch, execution="independent"))
        while not any(held in path for _, path, _ in faults.events()):
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    faults.reset()
    nexus.flush()
    nexus.close()
    with anda.Nexus(tmp_path / "store", readonly=True, verify=True) as reopened:
        stored = people(reopened)
    assert len(stored) < len(batch)  # the cancelled operations never ran


def test_closed_store_fails_async_too() -> None:
    store = anda.Nexus()
    store.close()

    async def main() -> None:
        with pytest.raises(anda.MemoryClosedError):
            await store.execute_kip_async("DESCRIBE PRIMER")

    asyncio.run(main())


def test_concurrent_async_calls_each_get_their_own_result(nexus: anda.Nexus) -> None:
    """Many calls in flight on two loops at once: every result reaches the
    call that asked for it, and nothing stays registered afterwards."""
    count = 60
    nexus.execute_kip(
        [(UPSERT_PERSON, {"key": f"p{i}", "name": f"name {i}"}) for i in range(count)]
    )

    async def ask_all() -> list[list[str]]:
        found = await asyncio.gather(
            *(nexus.execute_kip_async(FIND_PERSON_NAME, {"key": f"p{i}"}) for i in range(count))
        )
        inbox = anda._awaiting._inbox(asyncio.get_running_loop())
        assert inbox is not None
        assert not inbox._waiting
        return [result(response) for response in found]

    answers: list[list[list[str]]] = []
    threads = [
        threading.Thread(target=lambda: answers.append(asyncio.run(ask_all()))) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [[[f"name {i}"] for i in range(count)]] * 2


class _LoopWithoutReaders(asyncio.SelectorEventLoop):
    """Like Windows' proactor loop, it cannot watch a socket."""

    def add_reader(self, *args: object) -> None:
        raise NotImplementedError


def test_async_calls_work_on_a_loop_that_cannot_watch_sockets(nexus: anda.Nexus) -> None:
    async def main() -> None:
        assert anda._awaiting._inbox(asyncio.get_running_loop()) is None
        await nexus.execute_kip_async(UPSERT_PERSON, {"key": "w", "name": "Proactor"})
        assert result(await nexus.execute_kip_async(FIND_PERSON_NAME, {"key": "w"})) == ["Proactor"]
        with pytest.raises(anda.KipSyntaxError):
            await nexus.execute_kip_async("FIND(?x WHERE")

    loop = _LoopWithoutReaders()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


def test_closed_event_loops_leave_no_open_sockets() -> None:
    done = run_python(
        textwrap.dedent(
            f"""
            import asyncio, gc, warnings
            import anda
            warnings.simplefilter("error", ResourceWarning)
            store = anda.Nexus()
            async def main(pending):
                await store.execute_kip_async({UPSERT_PERSON!r}, {{"key": "k", "name": "n"}})
                if pending:  # left running when the loop closes
                    asyncio.create_task(store.execute_kip_async({FIND_ALL_PEOPLE!r}))
            for pending in (False, True) * 3:
                asyncio.run(main(pending))
            gc.collect()
            store.close()
            print("ok")
            """
        ),
        env={"PYTHONWARNINGS": "error::ResourceWarning"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    assert "ResourceWarning" not in done.stderr


@pytest.mark.skipif(not hasattr(signal, "SIGPIPE"), reason="no SIGPIPE on this platform")
def test_a_result_for_a_loop_that_is_gone_is_dropped_quietly() -> None:
    """The engine thread rings a socket nobody reads any more: even with
    SIGPIPE at its default (fatal) disposition, the process lives on."""
    done = run_python(
        textwrap.dedent(
            """
            import signal, socket, time
            import anda
            from anda import _anda
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)
            watched, ringer = socket.socketpair()
            inbox = _anda.NativeInbox(ringer.fileno())
            ringer.close()
            watched.close()
            store = anda.Nexus()
            store._native.execute_async("DESCRIBE PRIMER", None, False, None, None, (inbox, 7))
            deadline = time.monotonic() + 60
            while not (finished := inbox.take()) and time.monotonic() < deadline:
                time.sleep(0.01)
            (token, response, error), = finished
            print(token, response["status"], error)
            """
        )
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["7", "succeeded", "None"]


def test_close_waits_for_running_calls(store_dir) -> None:
    store = anda.Nexus(store_dir)
    batch = [(UPSERT_PERSON, {"key": f"w{i}", "name": "w"}) for i in range(256)]
    worker = threading.Thread(target=store.execute_kip, args=(batch,))
    worker.start()
    time.sleep(0.05)
    store.close()
    worker.join()
    with anda.Nexus(store_dir) as reopened:
        count = len(people(reopened))
    assert count in (0, 256)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX-only")
def test_forked_child_gets_a_clear_error_or_a_working_store() -> None:
    code = """
import anda, os, sys, warnings
warnings.simplefilter("ignore", DeprecationWarning)
parent = anda.Nexus()
parent.execute_kip("DESCRIBE PRIMER")
pid = os.fork()
if pid == 0:
    status = 0
    try:
        parent.execute_kip("DESCRIBE PRIMER")
        status = 10
    except anda.ForkedProcessError:
        pass
    with anda.Nexus() as fresh:
        if fresh.execute_kip("DESCRIBE PRIMER")["status"] != "succeeded":
            status = 11
    os._exit(status)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
parent.close()
"""
    proc = run_python(code, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "0"


def _interrupt(long_work: str) -> None:
    """Runs `long_work` in a child, sends SIGINT once it is under way, and
    checks that it ends in KeyboardInterrupt with the store still usable.

    The child installs Python's own SIGINT handler first: a shell that starts
    jobs in the background (``... &``, nohup, many CI launchers) hands its
    children SIGINT *ignored*, and Python then installs no handler at all.
    Every wait on the child is bounded, and the child is killed if the test
    fails, so a regression is a failure, never a stall.
    """
    code = f"""
import signal
signal.signal(signal.SIGINT, signal.default_int_handler)
import anda
from anda import _anda
from anda.testing import open_with_faults
nexus = anda.Nexus()
print("ready", flush=True)
try:
{textwrap.indent(textwrap.dedent(long_work), "    ")}
    print("finished", flush=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
print(nexus.execute_kip("DESCRIBE PRIMER")["status"], flush=True)
"""
    with subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        lines = _LineReader(proc)
        try:
            assert lines.next(timeout=120) == "ready", lines.stderr()
            time.sleep(0.5)
            sent = time.monotonic()
            proc.send_signal(signal.SIGINT)
            first = lines.next(timeout=60)
            reacted = time.monotonic() - sent
            assert first == "interrupted", lines.stderr()
            assert lines.next(timeout=60) == "succeeded", lines.stderr()
            assert proc.wait(timeout=60) == 0, lines.stderr()
        finally:
            proc.kill()
    # Reported, not asserted as a limit: the issue asks for about a second.
    print(f"KeyboardInterrupt after {reacted:.3f}s")


class _LineReader:
    """Reads a child's stdout and stderr on threads, so that every wait on
    them takes a timeout and no line is lost between two readers."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._errors: list[str] = []
        assert proc.stdout is not None
        assert proc.stderr is not None
        threading.Thread(target=self._pump, args=(proc.stdout,), daemon=True).start()
        threading.Thread(target=self._errors.extend, args=(proc.stderr,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line.strip())
        self._lines.put(None)

    def next(self, timeout: float) -> str | None:
        """The next line of stdout; None at its end; fails after `timeout` seconds."""
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no output from the child within {timeout}s; stderr: {self.stderr()}")

    def stderr(self) -> str:
        return "".join(self._errors)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery differs on Windows")
@pytest.mark.timeout(300)
@pytest.mark.parametrize("on_worker", [False, True], ids=["polled-by-caller", "on-worker"])
def test_ctrl_c_interrupts_a_waiting_engine_call(on_worker: bool) -> None:
    _interrupt(f"_anda._sleep_in_engine(600, on_worker={on_worker})")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery differs on Windows")
@pytest.mark.timeout(300)
def test_ctrl_c_interrupts_a_stream_of_batches() -> None:
    # Bounded even if the interrupt is never seen: the child then prints
    # "finished" and the test fails instead of waiting.
    _interrupt(
        f"""
        import time
        deadline = time.monotonic() + 120
        round = 0
        while time.monotonic() < deadline:
            params = [{{"key": f"k{{i}}", "name": str(round)}} for i in range(256)]
            nexus.execute_kip([({UPSERT_PERSON!r}, p) for p in params])
            round += 1
        """
    )


@pytest.mark.parametrize("on_worker", [False, True], ids=["polled-by-caller", "on-worker"])
def test_a_rust_panic_is_a_python_exception(on_worker: bool) -> None:
    with pytest.raises(anda.EnginePanicError, match="deliberate"):
        _anda._panic_in_engine("deliberate", on_worker=on_worker)
    # The runtime survives the panic.
    with anda.Nexus() as nexus:
        assert nexus.execute_kip("DESCRIBE PRIMER")["status"] == "succeeded"


def test_a_panic_in_a_subprocess_does_not_abort() -> None:
    code = """
import anda
from anda import _anda
from anda.testing import open_with_faults
try:
    _anda._panic_in_engine("boom")
except anda.EnginePanicError:
    print("caught")
"""
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "caught"
