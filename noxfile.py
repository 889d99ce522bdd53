"""The single entry point for developing anda: ``nox -s <session>``.

Every tool a session installs is pinned in ``requirements/``. Rust artifacts
are shared through cargo's target directory (``CARGO_TARGET_DIR`` if set,
else ``target/``), so only the first build is slow.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import nox

nox.options.sessions = ["lint", "typecheck", "test"]
nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
# A session whose interpreter is missing fails: it never "passes" by skipping.
nox.options.error_on_missing_interpreters = True

# The sessions run on the CPython that runs nox (any supported one, 3.10+).
PYTHON = None
# The profile ``maturin develop`` builds with; ``cargo test`` reuses its dependencies.
DEV_PROFILE = "dev"


def _install_extension(session: nox.Session) -> None:
    """Builds the extension into the session's virtualenv (an editable install).

    A cold build compiles anda_engine's whole dependency tree: about 30
    minutes on 2 cores. Later builds reuse the cargo target directory. When
    the output is not a terminal (CI, a pipe), cargo shows no progress bar
    and can be silent for minutes, so a line a minute says the build is alive.
    """
    command = ("maturin", "develop", "--profile", DEV_PROFILE)
    if sys.stdout.isatty():
        session.run(*command)
        return
    started = time.monotonic()
    finished = threading.Event()

    def heartbeat() -> None:
        while not finished.wait(60):
            minutes = int(time.monotonic() - started) // 60
            session.log(f"still building anda ({minutes} min) ...")

    thread = threading.Thread(target=heartbeat, name="build-heartbeat", daemon=True)
    thread.start()
    try:
        session.run(*command)  # a failed build still fails the session
    finally:
        finished.set()
        thread.join()


@nox.session(python=PYTHON)
def develop(session: nox.Session) -> None:
    """Build anda into this session's virtualenv (maturin develop)."""
    session.install("-r", "requirements/test.txt")
    _install_extension(session)
    session.log(f"activate with: source {session.virtualenv.location}/bin/activate")


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """Build anda and run the quick-start example on the embedded default store."""
    session.install("-r", "requirements/test.txt")
    _install_extension(session)
    session.run("python", "examples/quickstart.py")


def _run_tests(session: nox.Session, hypothesis_profile: str) -> None:
    session.install("-r", "requirements/test.txt")
    _install_extension(session)
    # An explicitly set profile (CI sets "ci", derandomized) wins.
    env = {"HYPOTHESIS_PROFILE": os.environ.get("HYPOTHESIS_PROFILE", hypothesis_profile)}
    # The Rust tests live in anda_embedded (anda_py is tested from Python,
    # anda_bench has none); the main suite runs last, so its summary closes the log.
    session.run("cargo", "test", "-p", "anda_embedded", "--lib", "--locked", external=True)
    session.run("pytest", "--doctest-modules", "--pyargs", "anda", "-p", "no:cacheprovider")
    env["ANDA_DOCS_PYTHON_LANGCHAIN_MCP"] = _environment_of_its_own(
        session, "langchain-mcp", "requirements/langchain-mcp.txt"
    )
    session.run("pytest", "python_tests", *session.posargs, env=env)


def _environment_of_its_own(session: nox.Session, name: str, requirements: str) -> str:
    """A virtual environment beside the session's, for a docs block whose pins
    cannot sit beside anda's (``runs-in`` in python_tests/readme_blocks.py);
    answers its Python."""
    place = Path(session.virtualenv.location).with_name(
        f"{Path(session.virtualenv.location).name}-{name}"
    )
    python = place / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    if not python.exists():
        session.run("python", "-m", "venv", str(place))
    session.run(str(python), "-m", "pip", "install", "-q", "-r", requirements, external=True)
    return str(python)


@nox.session(python=PYTHON)
def test(session: nox.Session) -> None:
    """Build anda, then run the Rust tests, the doctests and the Python tests
    (quick Hypothesis profile), in that order."""
    _run_tests(session, "quick")


@nox.session(name="test-deep", python=PYTHON)
def test_deep(session: nox.Session) -> None:
    """The test session with the thorough Hypothesis profile (many more examples)."""
    _run_tests(session, "thorough")


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff (lint and format), cargo fmt --check, clippy with warnings denied."""
    session.install("-r", "requirements/lint.txt")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("cargo", "fmt", "--all", "--check", external=True)
    session.run(
        "cargo",
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
        external=True,
    )


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package, and mypy.stubtest of the native module's stubs."""
    session.install("-r", "requirements/typecheck.txt")
    _install_extension(session)
    session.run("mypy", "python/anda")
    session.run("python", "-m", "mypy.stubtest", "anda._anda", "--concise")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Binding vs native Rust on one workload, the write growth curve, the
    HTTP server under 8 client processes (in memory and on a directory), the
    three kinds of store (memory, directory, bucket), and a directory store
    against memory (durable_bench.py, into bench.json); writes
    bench-results/{bench,server,server-directory,stores}.json and redraws
    docs/growth.png.

    Both sides are built with the release profile, what ``pip install`` gives
    (``-- --dev`` measures the dev profile instead), so the ratio compares like
    with like. Other arguments go to tools/anda_bench/bench.py (e.g. ``--
    --quick --scale 0.2 --iterations 50``).
    """
    args = list(session.posargs)
    profile = "dev" if "--dev" in args else "release"
    args = [arg for arg in args if arg != "--dev"]
    session.install("-r", "requirements/test.txt", "-r", "requirements/bench.txt")
    # A wheel, not `maturin develop`: an editable install would put the release
    # build into python/anda, under every other session's feet.
    wheels = Path(session.create_tmp()) / "bench-wheel"
    shutil.rmtree(wheels, ignore_errors=True)
    # `bench`: only adds the two entry points bench.py times the engine through
    # (tools/anda_py/src/hooks.rs); every call path is the one users install.
    session.run(
        "maturin", "build", "--profile", profile, "--features", "bench", "--out", str(wheels)
    )
    (wheel,) = glob.glob(str(wheels / "*.whl"))
    session.install("--force-reinstall", "--no-deps", wheel)
    session.run(
        "cargo", "build", "--profile", profile, "-p", "anda_bench", "--locked", external=True
    )
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    native = os.path.join(target, "debug" if profile == "dev" else profile, "anda-bench-native")
    session.run(
        "python",
        "tools/anda_bench/bench.py",
        "--native",
        native,
        "--profile",
        profile,
        "--wheel",
        wheel,
        *args,
    )
    # The server under load (8 client processes), beside the in-process figures.
    requests = ["--requests", "200"] if "--quick" in args else []
    session.run(
        "python",
        "tools/anda_bench/server_bench.py",
        "--store",
        "memory",
        "--json",
        "bench-results/server.json",
        *requests,
    )
    # ... and on a directory store, whose writes go through the journal.
    session.run(
        "python",
        "tools/anda_bench/server_bench.py",
        "--store",
        "directory",
        "--json",
        "bench-results/server-directory.json",
        *requests,
    )
    # In memory, a directory and a bucket (moto's S3 server on loopback).
    session.run("python", "tools/anda_bench/store_bench.py", "--json", "bench-results/stores.json")
    # Durable memory at in-memory speed: directory against memory, into bench.json.
    quick = ["--quick"] if "--quick" in args else []
    session.run(
        "python", "tools/anda_bench/durable_bench.py", "--into", "bench-results/bench.json", *quick
    )
    # What one commit writes as a directory store grows (docs/write-amplification.md).
    sizes = "1000,3000" if "--quick" in args else "1000,3000,10000"
    store = Path(session.create_tmp()) / "write-amplification"
    shutil.rmtree(store, ignore_errors=True)
    report = session.run(native, "--write-amplification", str(store), sizes, silent=True)
    Path("bench-results/write-amplification.json").write_text(str(report))
    session.log(str(report))


@nox.session(python=PYTHON)
def allocators(session: nox.Session) -> None:
    """The native query mix under the system allocator, mimalloc and jemalloc
    (tools/anda_bench/allocators.py; needs Debian's libmimalloc2.0 and
    libjemalloc2). Writes bench-results/allocators.json."""
    session.install("-r", "requirements/test.txt", "-r", "requirements/bench.txt")
    _install_extension(session)
    build = ("cargo", "build", "--profile", "release", "-p", "anda_bench", "--locked")
    session.run(*build, "--features", "anda_embedded/system-allocator", external=True)
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    system = Path(session.create_tmp()) / "anda-bench-native-system"
    shutil.copyfile(os.path.join(target, "release", "anda-bench-native"), system)
    system.chmod(0o755)
    session.run(*build, external=True)  # the benchmark binary as it ships again
    session.run(
        "python", "tools/anda_bench/allocators.py", "--native", str(system), *session.posargs
    )


def _cpython_at_least(minor: int) -> str:
    """A CPython 3.minor+ interpreter: on PATH, else one pyenv has installed."""
    for candidate in (f"python3.{m}" for m in range(minor, 16)):
        if (
            shutil.which(candidate)
            and subprocess.run(
                [candidate, "--version"], capture_output=True, check=False
            ).returncode
            == 0
        ):
            return candidate
    root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False)
    for path in sorted(glob.glob(os.path.join(root.stdout.strip(), "versions", "3.*", "bin"))):
        version = Path(path).parent.name
        if not version.endswith("t") and int(version.split(".")[1]) >= minor:
            return os.path.join(path, "python3")
    return f"3.{minor}"  # not found: nox fails the session, naming it


@nox.session(python=_cpython_at_least(12))  # atheris 3.1.0: no 3.11 wheel; anda's wheel is abi3
def fuzz(session: nox.Session) -> None:
    """Coverage-guided fuzzing of execute_kip with atheris: ``nox -s fuzz -- 1000000``.

    The argument is the budget in executions (default 10**6); other arguments go to
    tools/fuzz/fuzz_execute.py (``--seconds``, ``--timeout``, ``--seed``). Writes
    bench-results/fuzz.json; a finding is written to tools/fuzz/crashes/ and fails
    the session.
    """
    session.install("-r", "requirements/test.txt", "-r", "requirements/fuzz.txt")
    _install_extension(session)
    session.run("python", "tools/fuzz/fuzz_execute.py", *session.posargs)


def _run_harness(session: nox.Session, name: str) -> None:
    session.install("-r", "requirements/test.txt")
    _install_extension(session)
    session.run("python", f"tools/reliability/{name}.py", *session.posargs)


@nox.session(python=PYTHON)
def crash(session: nox.Session) -> None:
    """Crash cycles: SIGKILL a writer at random moments, reopen, check that every
    acknowledged write survived (``nox -s crash -- --cycles 1000``; default 100).
    Writes bench-results/crash.json."""
    _run_harness(session, "crash")


@nox.session(python=PYTHON)
def powercut(session: nox.Session) -> None:
    """Power cuts: record every change a writer makes to a directory store,
    build the disks a power cut could leave and open each in a fresh process
    (``nox -s powercut -- --states 2000``; default 300). Writes
    bench-results/powercut.json."""
    _run_harness(session, "powercut")


@nox.session(python=PYTHON)
def faults(session: nox.Session) -> None:
    """Injected storage faults: every call succeeds or raises an anda error, and a
    reopen keeps every acknowledged write (``nox -s faults -- --schedules 1000``;
    default 200). Writes bench-results/faults.json."""
    _run_harness(session, "faults")


@nox.session(python=PYTHON)
def stress(session: nox.Session) -> None:
    """Threads, async tasks, open/close cycles and bounded memory at full budgets
    (``-- --small`` for the CI budgets). Writes bench-results/stress.json."""
    _run_harness(session, "stress")


@nox.session(python=_cpython_at_least(12))  # runs the fuzzer too (atheris: 3.12+)
def reliability(session: nox.Session) -> None:
    """Every reliability harness (crash cycles, injected faults, damaged stores,
    fuzzing, stress) with small budgets, and one table of their figures;
    ``-- --full`` uses each harness's full budget. Writes bench-results/reliability.json."""
    session.install("-r", "requirements/test.txt", "-r", "requirements/fuzz.txt")
    _install_extension(session)
    session.run("python", "tools/reliability/report.py", *session.posargs)


# -- wheels, sdist, reproducibility -------------------------------------------

# Linux wheels are built with zig as the linker so they run on manylinux2014
# (glibc 2.17) whatever this machine's glibc is.
WHEEL_ARGS = ("--release", "--locked", "--zig", "--compatibility", "manylinux2014")
SOURCE_DATE_EPOCH = "1767225600"  # 2026-01-01T00:00:00Z


def _reproducible_env() -> dict[str, str]:
    """What makes a build a function of its source alone."""
    return {
        # One target directory for every copy of the source: registry crates
        # are compiled once; each copy still compiles its own workspace crates.
        "CARGO_TARGET_DIR": os.environ.get(
            "CARGO_TARGET_DIR", str(Path(__file__).parent / "target")
        ),
        # Archive entry times in the wheel and the sdist (else: now). A fixed
        # value rather than the commit time: the cc crate reruns every C build
        # script (aws-lc-sys, croaring-sys) whenever this variable changes.
        "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH,
        # Incremental state is per-machine; never let it into a release.
        "CARGO_INCREMENTAL": "0",
    }


def _build_dists(session: nox.Session, source: Path, out: Path) -> tuple[Path, Path]:
    shutil.rmtree(out, ignore_errors=True)
    env = _reproducible_env()
    manifest = str(source / "tools" / "anda_py" / "Cargo.toml")
    with session.chdir(source):
        session.run("maturin", "build", *WHEEL_ARGS, "--out", str(out), "-m", manifest, env=env)
        session.run("maturin", "sdist", "--out", str(out), "-m", manifest, env=env)
    [wheel] = glob.glob(str(out / "*.whl"))
    [sdist] = glob.glob(str(out / "*.tar.gz"))
    return Path(wheel), Path(sdist)


def _touch_tree(root: Path) -> None:
    """Marks a copied source tree as new, so cargo compiles the workspace
    crates from it instead of reusing artifacts built from another copy (a
    copy keeps older mtimes, which cargo would read as "unchanged")."""
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cpythons() -> list[str]:
    """Every CPython 3.10+ interpreter pyenv has, plus the session's."""
    root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip()
    found = []
    for path in sorted(glob.glob(os.path.join(root, "versions", "3.*", "bin", "python3"))):
        version = Path(path).parent.parent.name
        major, minor = (int(part) for part in version.split(".")[:2])
        if (major, minor) >= (3, 10) and not version.endswith("t"):
            found.append(path)
    return found


@nox.session(python=PYTHON)
def build(session: nox.Session) -> None:
    """A manylinux2014 abi3 wheel and the sdist, audited, then tested on every
    CPython 3.10+ here, and a wheel rebuilt from the sdist alone with cargo offline."""
    session.install("-r", "requirements/build.txt")
    root = Path.cwd()
    wheel, sdist = _build_dists(session, root, root / "dist")
    session.run("auditwheel", "show", str(wheel))
    session.run("abi3audit", "--strict", "--report", str(wheel))
    session.run("twine", "check", "--strict", str(wheel), str(sdist))
    session.run("check-wheel-contents", str(wheel))
    session.log(
        f"wheel {wheel.name}: {wheel.stat().st_size / 2**20:.1f} MiB, sha256 {_sha256(wheel)}"
    )

    tmp = Path(session.create_tmp()).resolve()
    for python in _cpythons():
        venv = tmp / f"venv-{Path(python).parent.parent.name}"
        shutil.rmtree(venv, ignore_errors=True)
        session.run(python, "-m", "venv", str(venv), external=True)
        bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
        pip = [str(bin_dir / "python"), "-m", "pip", "install", "--quiet"]
        session.run(*pip, "-r", str(root / "requirements" / "test.txt"), external=True)
        session.run(*pip, str(wheel), external=True)
        # From a directory outside the source tree, so `anda` is the installed wheel.
        with session.chdir(tmp):
            session.run(
                str(bin_dir / "python"),
                "-m",
                "pytest",
                str(root / "python_tests"),
                "-p",
                "no:cacheprovider",
                "-q",
                env={"HYPOTHESIS_PROFILE": "ci"},
                external=True,
            )

    # The sdist alone is enough: unpack it elsewhere and build with cargo
    # offline. Crates come from the local registry cache, checked against the
    # checksums in the sdist's Cargo.lock. (Not vendored into the sdist:
    # anda_engine's ~570 crates would add well over 100 MB to it.)
    unpacked = tmp / "sdist"
    shutil.rmtree(unpacked, ignore_errors=True)
    with tarfile.open(sdist) as archive:
        archive.extractall(unpacked, filter="data")
    [project] = unpacked.iterdir()
    _touch_tree(project)
    with session.chdir(project):
        session.run(
            "maturin",
            "build",
            *WHEEL_ARGS,
            "--out",
            str(tmp / "from-sdist"),
            env={**_reproducible_env(), "CARGO_NET_OFFLINE": "true"},
        )


@nox.session(python=PYTHON)
def repro(session: nox.Session) -> None:
    """Build the wheel and the sdist twice, from two copies of the source at
    different paths; fail unless both pairs are byte-identical."""
    session.install("-r", "requirements/build.txt")
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], capture_output=True, text=True, check=True
    ).stdout.split("\0")
    tmp = Path(session.create_tmp()).resolve()
    sums = []
    for copy in (tmp / "first" / "anda", tmp / "second" / "elsewhere" / "deeper" / "anda"):
        shutil.rmtree(copy.parent, ignore_errors=True)
        for name in filter(None, tracked):
            target = copy / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(name, target)
        _touch_tree(copy)
        wheel, sdist = _build_dists(session, copy, copy / "dist")
        sums.append((wheel.name, _sha256(wheel), sdist.name, _sha256(sdist)))
    for wheel_name, wheel_sum, sdist_name, sdist_sum in sums:
        session.log(f"{wheel_name} {wheel_sum}")
        session.log(f"{sdist_name} {sdist_sum}")
    if sums[0] != sums[1]:
        session.error("the two builds differ: the build is not reproducible")
    session.log("reproducible: both wheels and both sdists are byte-identical")


# -- the reference site -------------------------------------------------------


@nox.session(python=_cpython_at_least(11))  # mkdocs-material 9.8 and griffe 2 need 3.11+
def docs(session: nox.Session) -> None:
    """The reference site (mkdocs), strict: a broken link, a reference that does not
    resolve or a public name without a docstring fails it.

    The API pages are read from the sources and the native module's stubs with
    griffe, statically, so nothing is compiled. Builds into .nox/docs/tmp/site;
    ``nox -s docs -- serve`` serves it on http://127.0.0.1:8000 instead. (The
    pages' examples run in ``nox -s test``: python_tests/test_readme.py.)
    """
    session.install("-r", "requirements/docs.txt")
    session.run("python", "docs/check_docstrings.py")
    env = {"NO_MKDOCS_2_WARNING": "1"}
    if session.posargs[:1] == ["serve"]:
        session.run("mkdocs", "serve", "--strict", *session.posargs[1:], env=env)
        return
    site = Path(session.create_tmp()).resolve() / "site"
    session.run("mkdocs", "build", "--strict", "--site-dir", str(site), env=env)
    session.log(f"the site: {site / 'index.html'}")
