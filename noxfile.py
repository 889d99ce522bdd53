"""The single entry point for developing anda: ``nox -s <session>``.

Every tool a session installs is pinned in ``requirements/``. Rust artifacts
are shared through cargo's target directory (``CARGO_TARGET_DIR`` if set,
else ``target/``), so only the first build is slow.
"""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["lint", "typecheck", "test"]
nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"
# The profile ``maturin develop`` builds with; ``cargo test`` reuses its dependencies.
DEV_PROFILE = "dev"


def _install_extension(session: nox.Session) -> None:
    """Builds the extension into the session's virtualenv (an editable install)."""
    session.run("maturin", "develop", "--profile", DEV_PROFILE)


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
    session.run("pytest", "python_tests", *session.posargs, env=env)
    session.run("pytest", "--doctest-modules", "--pyargs", "anda", "-p", "no:cacheprovider")
    session.run("cargo", "test", "--workspace", "--locked", external=True)


@nox.session(python=PYTHON)
def test(session: nox.Session) -> None:
    """Build anda, then run the Python tests (quick Hypothesis profile), the
    doctests and the Rust tests."""
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
