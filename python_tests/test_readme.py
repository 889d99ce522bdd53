"""The README and the docs site run: every example in them, as a reader runs it.

Each document's code blocks run in order, in a new interpreter and a new
temporary directory (see ``readme_blocks.py`` for what runs and the markers
that change it). A block that does not do what the text says fails the test,
naming its line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from readme_blocks import CollectError, collect

ROOT = Path(__file__).resolve().parent.parent
RUNNER = Path(__file__).resolve().parent / "readme_blocks.py"
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
# Not runnable blocks are the exception: a document may mark at most this many.
MAX_NOT_RUN = 6
# The examples' stores go on a RAM disk where there is one: each new directory
# store fsyncs its whole bootstrap, seconds on a slow disk, and what the
# examples check (what they print, what they store) does not depend on that.
_RAM_DISK = Path("/dev/shm")
#: What a document's run reports: ok, and the failed block's line and message.
_Report = dict[str, Any]


def _new_directory() -> Path:
    ram_disk = _RAM_DISK.is_dir() and os.access(_RAM_DISK, os.W_OK)
    return Path(tempfile.mkdtemp(prefix="anda-readme-", dir=_RAM_DISK if ram_disk else None))


@pytest.fixture
def workspace() -> Iterator[Path]:
    """A new directory for one run, on the RAM disk if there is one."""
    path = _new_directory()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def document_runs(request: pytest.FixtureRequest) -> Iterator[dict[Path, Future[_Report]]]:
    """Every selected document's run, started at once: each runs in its own
    process and directory, so they overlap on every core there is."""
    documents = [
        item.callspec.params["document"]
        for item in request.session.items
        if isinstance(item, pytest.Function)
        and item.path == request.path
        and item.originalname == "test_examples_run"
        and hasattr(item, "callspec")
    ]
    base = _new_directory()
    pool = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 2))
    try:
        yield {
            document: pool.submit(_run_document, document, base / str(index) / "reader")
            for index, document in enumerate(documents)
        }
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(base, ignore_errors=True)


def _run_document(document: Path, workdir: Path) -> _Report:
    report = workdir.parent / f"{workdir.name}-report.json"
    workdir.mkdir(parents=True)
    proc = subprocess.run(
        [sys.executable, str(RUNNER), str(document), str(workdir), str(report)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        timeout=600,
        check=False,
    )
    if not report.exists():
        pytest.fail(f"the runner died ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    result: _Report = json.loads(report.read_text(encoding="utf-8"))
    result["output"] = proc.stdout[-4000:] + proc.stderr[-4000:]
    return result


@pytest.mark.parametrize(
    "document", DOCUMENTS, ids=[doc.relative_to(ROOT).as_posix() for doc in DOCUMENTS]
)
def test_examples_run(document: Path, document_runs: dict[Path, Future[_Report]]) -> None:
    blocks = collect(document.read_text(encoding="utf-8"), str(document))
    not_run = [block for block in blocks if block.not_run is not None]
    assert len(not_run) <= MAX_NOT_RUN, [f"line {block.line}" for block in not_run]
    result = document_runs[document].result()
    assert result["ok"], f"{result['message']}\n--- output ---\n{result['output']}"
    if result["skipped"]:
        # Said, not hidden: a block for a framework this Python does not have.
        warnings.warn(f"{document.name}: not run, {'; '.join(result['skipped'])}", stacklevel=1)


# -- the README's links ---------------------------------------------------------

_LINK = re.compile(r"\[[^\]]*\]\((?P<target>[^)\s]+)\)")


def _github_anchor(heading: str) -> str:
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_readme_links_resolve() -> None:
    """Relative links name files that exist, and #anchors headings that exist."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    prose = re.sub(r"^```.*?^```", "", text, flags=re.DOTALL | re.MULTILINE)
    anchors = {
        _github_anchor(line.lstrip("#")) for line in prose.splitlines() if line.startswith("#")
    }
    broken = []
    for match in _LINK.finditer(prose):
        target = match["target"]
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        file, _, anchor = target.partition("#")
        missing = not (ROOT / file).exists() if file else anchor not in anchors
        if missing:
            broken.append(target)
    assert not broken, broken


# -- the collector itself ---------------------------------------------------------


def _runs(text: str, workspace: Path) -> _Report:
    document = workspace / "doc.md"
    document.write_text(text, encoding="utf-8")
    return _run_document(document, workspace / "work")


def test_blocks_share_one_namespace_and_one_directory(workspace: Path) -> None:
    text = """\
# A document

```python
import os

start = os.getcwd()
with open("note.txt", "w") as handle:
    handle.write("DESCRIBE PRIMER")
print(2 + 2)  # 4
```

```sh
pip install something-never-installed   # shown, not run
echo 'DESCRIBE PRIMER' > second.kip
python -m anda --file note.txt --compact
python -m anda --compact < second.kip
echo 'DESCRIBE PRIMER' | python -m anda --compact
```

<!-- exit-status: 1 -->
```sh
python -m anda 'FIND(?x WHERE'
```

```console
$ python -m anda --compact 'FIND(?p) WHERE { ?p {type: "Person"} }'
{"kip": "2.0", "status": "succeeded", ... "result": [], ...}
```

>>> is not a block

```python
>>> os.getcwd() == start, os.path.exists("second.kip")
(True, True)
```

<!-- not-run: shows a failure on purpose -->
```python
raise SystemExit("never run")
```
"""
    result = _runs(text, workspace)
    assert result["ok"], result
    assert result["ran"] == 5


@pytest.mark.parametrize(
    ("block", "line", "says"),
    [
        ("```python\nx = 1\n\nraise ValueError('boom')\n```\n", 3, 'doc.md", line 6'),
        ("```python\n>>> 1 + 1\n3\n```\n", 3, "Expected:\n    3\nGot:\n    2"),
        ("```python\nprint([1, 2])  # [1, 3]\n```\n", 3, "the comment says this prints"),
        ("```sh\npython -m anda 'FIND(?x WHERE'\n```\n", 4, "exited with 1, not 0"),
        ("```console\n$ python -m anda --compact 'DESCRIBE PRIMER'\nnope\n```\n", 4, "Expected"),
    ],
    ids=["raises", "doctest", "print-comment", "exit-status", "console-output"],
)
def test_a_failing_block_fails_with_its_line(
    block: str, line: int, says: str, workspace: Path
) -> None:
    result = _runs("# Title\n\n" + block, workspace)
    assert not result["ok"]
    assert result["line"] == line, result
    assert says in str(result["message"]), result["message"]


def test_blocks_after_a_failure_do_not_run(workspace: Path) -> None:
    text = "```python\nraise RuntimeError\n```\n\n```python\nopen('ran', 'w')\n```\n"
    assert not _runs(text, workspace)["ok"]
    assert not (workspace / "work" / "ran").exists()


def test_a_block_that_requires_a_missing_module_is_skipped_and_said(workspace: Path) -> None:
    text = """\
<!-- requires: json, no_such_framework.tools -->
```python
raise SystemExit("never run")
```

<!-- requires: json, collections.abc -->
```python
import json
print(json.dumps([1]))  # [1]
```
"""
    result = _runs(text, workspace)
    assert result["ok"], result
    assert result["ran"] == 1
    assert result["skipped"] == ["line 2: no_such_framework.tools not installed"]


def test_a_required_module_that_fails_to_import_fails_its_block(workspace: Path) -> None:
    text = """\
```python
import pathlib, sys

pathlib.Path("broken_framework.py").write_text("raise ImportError('broken')")
sys.path.insert(0, ".")
```

<!-- requires: broken_framework -->
```python
import broken_framework
```
"""
    result = _runs(text, workspace)
    assert not result["ok"]
    assert result["line"] == 9, result
    assert "broken" in str(result["message"])


@pytest.mark.parametrize(
    "text",
    [
        "<!-- not-run -->\n```python\nx\n```\n",
        "<!-- not-run: -->\n```python\nx\n```\n",
        "<!-- not-run: why -->\n\n```python\nx\n```\n",
        "<!-- exit-status: one -->\n```sh\npython -m anda x\n```\n",
        "<!-- not-run: a json block is never run -->\n```json\n{}\n```\n",
        "```python\nx = 1\n",
        "```sh\npython -m anda 'DESCRIBE PRIMER' && rm -rf /\n```\n",
        "<!-- requires -->\n```python\nx\n```\n",
        "<!-- requires: not a-module -->\n```python\nx\n```\n",
    ],
    ids=[
        "no-reason",
        "empty-reason",
        "not-before-a-fence",
        "bad-status",
        "marker-on-json",
        "unclosed",
        "unsupported-shell",
        "requires-nothing",
        "requires-no-module-name",
    ],
)
def test_malformed_documents_are_refused(text: str) -> None:
    with pytest.raises(CollectError):
        collect(text)


def test_a_runs_in_block_runs_in_the_named_python_and_checks_its_prints(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = "<!-- runs-in: elsewhere -->\n"
    shares_nothing = (
        "```python\nx = 1\n```\n\n" + marker + "```python\nprint('x' in dir())  # False\n"
    )
    shares_nothing += "import os, sys\nprint(os.environ['ANDA_PYTHON'] != '')  # True\n```\n"
    assert _runs(shares_nothing, workspace)["skipped"] == [
        "line 6: ANDA_DOCS_PYTHON_ELSEWHERE is not set"
    ]

    monkeypatch.setenv("ANDA_DOCS_PYTHON_ELSEWHERE", sys.executable)
    (workspace / "again").mkdir()
    (workspace / "wrong").mkdir()
    result = _runs(shares_nothing, workspace / "again")
    assert result["ok"], result
    assert result["ran"] == 2
    wrong = marker + "```python\nprint([1, 2])  # [1, 3]\n```\n"
    result = _runs(wrong, workspace / "wrong")
    assert not result["ok"]
    assert result["line"] == 2, result
    assert "the comment says this prints" in str(result["message"]), result["message"]
