"""Runs the examples of a Markdown document the way a reader would.

``collect(text)`` finds the fenced code blocks a reader is meant to run:

- ```` ```python ```` blocks run in order in ONE namespace, as if pasted into
  one interpreter. A block whose first line starts with ``>>>`` is a doctest:
  each example's shown output is compared with what it prints (ELLIPSIS and
  NORMALIZE_WHITESPACE, as the package's doctests). In any other block, a
  ``print(...)`` statement whose last line ends in a comment must print
  exactly that comment: ``print(rows)  # ['Ada']``.
- ```` ```sh ````, ```` ```bash ```` and ```` ```console ```` blocks: every
  command that runs ``python -m anda ...`` is run (with this interpreter),
  and so is every command that writes a file the next ones read (``echo ...
  > FILE``, ``cat > FILE <<'EOF'`` ... ``EOF``). Each must exit 0. In a
  ``console`` block, commands start with ``$ `` and the lines after one are
  its output, compared as a doctest compares. Other commands (``pip``,
  ``nox``, ``export``, ``curl``, ...) are shown, not run.
- Other fences (``json``, ``text``, none) are not code to run.

A marker, an HTML comment on the line right before a fence, changes that:

- ``<!-- not-run: why -->``: the block is not run. The reason is required.
- ``<!-- exit-status: N -->``: the block's ``python -m anda`` commands must
  exit with status N.
- ``<!-- requires: MODULE[, MODULE...] -->``: the block runs only where every
  named module can be imported (a framework the test requirements install
  only on some Pythons, e.g. one that needs CPython 3.11+). Where one is
  missing, the block is skipped and the report names it; a module that is
  present but fails to import still fails the block.
- ``<!-- runs-in: NAME -->``: the block runs as a script of its own in another
  environment, whose Python ``ANDA_DOCS_PYTHON_<NAME>`` names (``nox -s test``
  builds it; e.g. a framework whose pins cannot sit beside anda's). The block
  shares nothing with the others; ``ANDA_PYTHON`` names the Python anda is
  installed in, and commented prints are checked as in any block. Where the
  variable is unset, the block is skipped and the report says so.

``run(path, workdir)`` runs a document's blocks in ``workdir`` and stops at
the first failure, naming the block's line. ``python readme_blocks.py DOC
WORKDIR REPORT`` does that in a fresh interpreter and writes a JSON report:
the test (``python_tests/test_readme.py``) runs each document so, so that
every document starts, as a reader does, from a new process with no store
open and the default store in memory.
"""

from __future__ import annotations

import ast
import doctest
import importlib.util
import inspect
import io
import json
import linecache
import os
import re
import shlex
import subprocess
import sys
import tokenize
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

PYTHON_LANGUAGES = frozenset({"python", "py", "python3", "pycon"})
SHELL_LANGUAGES = frozenset({"sh", "bash", "shell", "console", "shell-session"})
CONSOLE_LANGUAGES = frozenset({"console", "shell-session"})
#: Seconds one shell command may take (a server that never returns fails here).
COMMAND_TIMEOUT = 120
DOCTEST_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
#: Environment variables a new reader does not have set: each would point the
#: examples at a store or a server other than the one the text describes.
READER_UNSET = ("ANDA_DB", "ANDA_API_KEY")

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`]*)$")
_MARKER = re.compile(
    r"^\s*<!--\s*(?P<name>not-run|exit-status|requires|runs-in)\b(?P<rest>.*?)-->\s*$"
)
_MARKER_START = re.compile(r"^\s*<!--\s*(not-run|exit-status|requires|runs-in)\b")
_MODULE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


class CollectError(Exception):
    """The document cannot be collected: a marker or a block is malformed."""


@dataclass
class ShellCommand:
    """One command of a shell block that the runner runs."""

    line: int
    text: str
    kind: Literal["anda", "write"]
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    stdin: str | None = None
    stdin_file: str | None = None
    path: str | None = None
    content: str | None = None
    expected_output: str | None = None


@dataclass
class Block:
    """A fenced code block: where it starts (the fence's line, 1-based) and what it holds."""

    line: int
    language: str
    source: str
    not_run: str | None = None
    exit_status: int = 0
    requires: list[str] = field(default_factory=list)
    runs_in: str | None = None
    commands: list[ShellCommand] = field(default_factory=list)

    @property
    def kind(self) -> Literal["python", "doctest", "shell"] | None:
        if self.language in PYTHON_LANGUAGES:
            first = next((ln for ln in self.source.splitlines() if ln.strip()), "")
            return "doctest" if first.lstrip().startswith(">>>") else "python"
        if self.language in SHELL_LANGUAGES:
            return "shell"
        return None

    @property
    def first_code_line(self) -> int:
        return self.line + 1


def collect(text: str, name: str = "<document>") -> list[Block]:
    """Every fenced block of ``text`` that holds code to run, with its markers."""
    lines = text.splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            if _MARKER_START.match(lines[index]) and not (
                index + 1 < len(lines) and _FENCE.match(lines[index + 1])
            ):
                raise CollectError(
                    f"{name}:{index + 1}: a marker must be on the line right before a code fence"
                )
            index += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        language = opening["info"].strip().split(" ")[0].lower() if opening["info"] else ""
        body: list[str] = []
        end = index + 1
        while end < len(lines):
            closing = lines[end].strip()
            if closing.startswith(fence[0] * len(fence)) and not closing.strip(fence[0]):
                break
            raw = lines[end]
            body.append(raw[len(indent) :] if raw.startswith(indent) else raw.lstrip())
            end += 1
        else:
            raise CollectError(f"{name}:{index + 1}: this code fence is never closed")
        block = Block(line=index + 1, language=language, source="\n".join(body) + "\n")
        if index > 0:
            _apply_marker(block, lines[index - 1], name, index)
        if block.kind is not None:
            if block.kind == "shell":
                block.commands = _shell_commands(block, name)
            blocks.append(block)
        elif block.not_run is not None or block.exit_status or block.requires or block.runs_in:
            raise CollectError(f"{name}:{index}: a marker on a block that is never run")
        index = end + 1
    return blocks


def _apply_marker(block: Block, line: str, name: str, line_number: int) -> None:
    if not _MARKER_START.match(line):
        return
    marker = _MARKER.match(line)
    if marker is None:
        raise CollectError(f"{name}:{line_number}: malformed marker {line.strip()!r}")
    rest = marker["rest"].strip()
    if marker["name"] == "not-run":
        reason = rest[1:].strip() if rest.startswith(":") else ""
        if not reason:
            raise CollectError(
                f"{name}:{line_number}: a not-run marker needs a reason: <!-- not-run: why -->"
            )
        block.not_run = reason
    elif marker["name"] == "requires":
        listed = rest[1:].split(",") if rest.startswith(":") else []
        modules = [module.strip() for module in listed]
        if not modules or not all(_MODULE.fullmatch(module) for module in modules):
            raise CollectError(
                f"{name}:{line_number}: a requires marker names modules: "
                "<!-- requires: agent_framework -->"
            )
        block.requires = modules
    elif marker["name"] == "runs-in":
        environment = rest[1:].strip() if rest.startswith(":") else ""
        if not re.fullmatch(r"[a-z][a-z0-9-]*", environment):
            raise CollectError(
                f"{name}:{line_number}: a runs-in marker names an environment: "
                "<!-- runs-in: langchain-mcp -->"
            )
        block.runs_in = environment
    else:
        status = rest[1:].strip() if rest.startswith(":") else ""
        if not status.isdigit():
            raise CollectError(
                f"{name}:{line_number}: an exit-status marker needs a number: "
                "<!-- exit-status: 1 -->"
            )
        block.exit_status = int(status)


# -- shell blocks -------------------------------------------------------------

_HEREDOC = re.compile(r"^cat\s*>\s*(?P<path>[\w./-]+)\s*<<-?\s*(?P<q>['\"]?)(?P<tag>\w+)(?P=q)\s*$")


def _shell_commands(block: Block, name: str) -> list[ShellCommand]:
    """The commands of a shell block the runner runs (see the module's docstring)."""
    console = block.language in CONSOLE_LANGUAGES
    lines = block.source.splitlines()
    commands: list[ShellCommand] = []
    index = 0
    while index < len(lines):
        line_number = block.first_code_line + index
        raw = lines[index]
        if console:
            if not raw.startswith("$ "):
                index += 1  # output of a command that is not run
                continue
            raw = raw[2:]
        text = raw
        while text.endswith("\\") and index + 1 < len(lines):
            index += 1
            text = text[:-1] + " " + lines[index].strip()
        index += 1
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            continue
        heredoc = _HEREDOC.match(stripped)
        if heredoc is not None:
            content: list[str] = []
            while index < len(lines) and lines[index].strip() != heredoc["tag"]:
                content.append(lines[index])
                index += 1
            if index == len(lines):
                raise CollectError(f"{name}:{line_number}: here-document never ends")
            index += 1
            commands.append(
                ShellCommand(
                    line_number,
                    stripped,
                    "write",
                    path=heredoc["path"],
                    content="\n".join(content) + "\n",
                )
            )
            continue
        command = _parse_command(stripped, line_number, name)
        if command is None:
            continue
        if console:
            output: list[str] = []
            while index < len(lines) and not lines[index].startswith("$ "):
                output.append(lines[index])
                index += 1
            while output and not output[-1].strip():
                output.pop()
            command.expected_output = "\n".join(output) + "\n" if output else None
        commands.append(command)
    return commands


def _words(text: str) -> list[str]:
    lexer = shlex.shlex(text, posix=True, punctuation_chars="|<>;&")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    return list(lexer)


def _is_anda(argv: list[str]) -> bool:
    return len(argv) >= 3 and argv[0] in ("python", "python3") and argv[1:3] == ["-m", "anda"]


def _parse_command(text: str, line: int, name: str) -> ShellCommand | None:
    try:
        words = _words(text)
    except ValueError as err:
        if "python -m anda" in text:
            raise CollectError(f"{name}:{line}: cannot read this command: {err}") from None
        return None
    stages: list[list[str]] = [[]]
    for word in words:
        if word == "|":
            stages.append([])
        else:
            stages[-1].append(word)
    runs_anda = any(_is_anda(_without_env(stage)[1]) for stage in stages)
    if not runs_anda:
        # A file written for the commands after it: echo TEXT > FILE.
        if len(stages) == 1 and stages[0][:1] == ["echo"] and stages[0][-2:-1] == [">"]:
            return ShellCommand(
                line,
                text,
                "write",
                path=stages[0][-1],
                content=" ".join(stages[0][1:-2]) + "\n",
            )
        return None

    def unsupported() -> CollectError:
        return CollectError(
            f"{name}:{line}: the runner cannot run this command: {text!r} (it runs "
            "'[VAR=value] python -m anda ARGS [< FILE]', optionally fed by 'echo TEXT |' "
            "or 'cat FILE |'); rewrite it, or mark the block <!-- not-run: why -->"
        )

    if any(word in {";", "&", "&&", "||", ">", ">>"} for word in words) or len(stages) > 2:
        raise unsupported()
    command = ShellCommand(line, text, "anda")
    if len(stages) == 2:
        feeder = stages[0]
        if feeder[:1] == ["echo"]:
            command.stdin = " ".join(feeder[1:]) + "\n"
        elif feeder[:1] == ["cat"] and len(feeder) == 2:
            command.stdin_file = feeder[1]
        else:
            raise unsupported()
    env, argv = _without_env(stages[-1])
    if not _is_anda(argv):
        raise unsupported()
    if "<" in argv:
        at = argv.index("<")
        if at != len(argv) - 2 or command.stdin is not None or command.stdin_file is not None:
            raise unsupported()
        command.stdin_file = argv[at + 1]
        argv = argv[:at]
    command.env = env
    command.argv = argv[1:]  # what follows "python"
    return command


def _without_env(stage: list[str]) -> tuple[dict[str, str], list[str]]:
    env: dict[str, str] = {}
    index = 0
    while index < len(stage) and re.fullmatch(r"[A-Za-z_]\w*=.*", stage[index]):
        key, _, value = stage[index].partition("=")
        env[key] = value
        index += 1
    return env, stage[index:]


# -- running ------------------------------------------------------------------


class BlockFailed(Exception):
    """A block did not do what the document says."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.line = line


def run(path: Path, workdir: Path, skipped: list[str] | None = None) -> int:
    """Runs every block of ``path`` in order in ``workdir``; returns how many ran.

    A block whose ``requires`` marker names a module that is not installed is
    not run; ``skipped`` (when given) gets a line saying which and why.
    Raises :class:`BlockFailed` at the first block that fails.
    """
    path = path.resolve()
    blocks = collect(path.read_text(encoding="utf-8"), str(path))
    os.chdir(workdir)
    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__}
    linecache.cache[str(path)] = (
        path.stat().st_size,
        None,
        path.read_text(encoding="utf-8").splitlines(keepends=True),
        str(path),
    )
    ran = 0
    for block in blocks:
        if block.not_run is not None:
            continue
        missing = [module for module in block.requires if not _installed(module)]
        if missing:
            if skipped is not None:
                skipped.append(f"line {block.line}: {', '.join(missing)} not installed")
            continue
        if block.runs_in is not None:
            variable = environment_variable(block.runs_in)
            interpreter = os.environ.get(variable)
            if not interpreter:
                if skipped is not None:
                    skipped.append(f"line {block.line}: {variable} is not set")
                continue
            _run_elsewhere(block, interpreter, str(path), workdir)
        elif block.kind == "python":
            _run_python(block, namespace, str(path))
        elif block.kind == "doctest":
            _run_doctest(block, namespace, str(path))
        else:
            for command in block.commands:
                _run_command(command, block, str(path), workdir)
        ran += 1
    return ran


def _installed(module: str) -> bool:
    """Whether ``module`` can be found (a missing parent package: no)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


class _ExpectedPrints(ast.NodeTransformer):
    """Turns ``print(...)  # shown output`` into a print that checks its output."""

    def __init__(self, comments: dict[int, tuple[int, str]], first_line: int) -> None:
        self.comments = comments
        self.first_line = first_line

    def visit_Expr(self, node: ast.Expr) -> ast.AST:
        call = node.value
        if (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Name)
            and call.func.id == "print"
            and node.end_lineno in self.comments
            and self.comments[node.end_lineno][0] >= (node.end_col_offset or 0)
        ):
            expected = self.comments[node.end_lineno][1]
            call.func = ast.Name("__readme_print__", ast.Load())
            line = self.first_line + node.lineno - 1
            call.args[:0] = [ast.Constant(expected), ast.Constant(line)]
            ast.fix_missing_locations(node)
        return node


def _readme_print(expected: str, line: int, *args: Any, **kwargs: Any) -> None:
    buffer = io.StringIO()
    print(*args, **{**kwargs, "file": buffer})
    shown = buffer.getvalue()
    print(shown, end="")
    if " ".join(shown.split()) != " ".join(expected.split()):
        raise AssertionError(
            f"line {line}: the comment says this prints {expected!r}, it printed {shown.rstrip()!r}"
        )


def _parsed(block: Block, path: str) -> tuple[ast.Module, dict[int, tuple[int, str]]]:
    """The block's syntax tree and its comments (column and text by line)."""
    try:
        tree = ast.parse(block.source, filename=path)
    except SyntaxError as err:
        raise BlockFailed(path, block.line, f"python block does not parse: {err}") from None
    comments: dict[int, tuple[int, str]] = {}
    for token in tokenize.generate_tokens(io.StringIO(block.source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = (token.start[1], token.string[1:].strip())
    return tree, comments


def _run_python(block: Block, namespace: dict[str, Any], path: str) -> None:
    tree, comments = _parsed(block, path)
    tree = _ExpectedPrints(comments, block.first_code_line).visit(tree)
    ast.increment_lineno(tree, block.first_code_line - 1)
    namespace["__readme_print__"] = _readme_print
    try:
        exec(compile(tree, path, "exec"), namespace)
    except BaseException as err:
        if isinstance(err, KeyboardInterrupt):
            raise
        # From the block's own frame on: the runner's frame is no part of the story.
        frames = err.__traceback__.tb_next if err.__traceback__ is not None else None
        shown = "".join(traceback.format_exception(type(err), err, frames))
        raise BlockFailed(path, block.line, "python block raised:\n" + shown) from None
    finally:
        namespace.pop("__readme_print__", None)


def environment_variable(environment: str) -> str:
    """The variable naming the Python of a ``runs-in`` environment."""
    return "ANDA_DOCS_PYTHON_" + environment.upper().replace("-", "_")


def _run_elsewhere(block: Block, interpreter: str, path: str, workdir: Path) -> None:
    if block.kind != "python":
        raise BlockFailed(path, block.line, "a runs-in block must be a python block")
    tree, comments = _parsed(block, path)
    tree = _ExpectedPrints(comments, block.first_code_line).visit(tree)
    script = "\n\n".join(
        ["import io", "from typing import Any", inspect.getsource(_readme_print), ast.unparse(tree)]
    ).replace("def _readme_print(", "def __readme_print__(", 1)
    try:
        done = subprocess.run(
            [interpreter, "-c", script],
            cwd=workdir,
            env={**os.environ, "ANDA_PYTHON": sys.executable},
            capture_output=True,
            text=True,
            timeout=300,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise BlockFailed(
            path, block.line, f"python block did not run in {interpreter}: {err}"
        ) from None
    if done.returncode != 0:
        raise BlockFailed(
            path,
            block.line,
            f"python block failed in {interpreter} (exit status {done.returncode}):\n"
            + done.stderr[-4000:],
        )


def _run_doctest(block: Block, namespace: dict[str, Any], path: str) -> None:
    test = doctest.DocTestParser().get_doctest(
        block.source, namespace, f"{Path(path).name}:{block.line}", path, block.line
    )
    report = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=DOCTEST_FLAGS, verbose=False)
    results = runner.run(test, out=report.write, clear_globs=False)
    namespace.update(test.globs)
    if results.failed:
        raise BlockFailed(path, block.line, "doctest block failed:\n" + report.getvalue())


def _run_command(command: ShellCommand, block: Block, path: str, workdir: Path) -> None:
    if command.kind == "write":
        assert command.path is not None
        assert command.content is not None
        target = workdir / command.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(command.content, encoding="utf-8")
        return
    stdin = command.stdin
    if command.stdin_file is not None:
        stdin = (workdir / command.stdin_file).read_text(encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in READER_UNSET}
    env["PYTHONIOENCODING"] = "utf-8"  # what is read back, whatever the platform's pipes use
    env.update(command.env)
    try:
        proc = subprocess.run(
            [sys.executable, *command.argv],
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            encoding="utf-8",
            cwd=workdir,
            env=env,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BlockFailed(
            path,
            command.line,
            f"`{command.text}` was still running after {COMMAND_TIMEOUT} s (a server? "
            "mark its block <!-- not-run: why -->)",
        ) from None
    if proc.returncode != block.exit_status:
        raise BlockFailed(
            path,
            command.line,
            f"`{command.text}` exited with {proc.returncode}, not {block.exit_status}\n"
            f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}",
        )
    if command.expected_output is not None:
        checker = doctest.OutputChecker()
        if not checker.check_output(command.expected_output, proc.stdout, DOCTEST_FLAGS):
            example = doctest.Example(command.text, command.expected_output)
            raise BlockFailed(
                path,
                command.line,
                checker.output_difference(example, proc.stdout, DOCTEST_FLAGS),
            )


def main(argv: list[str]) -> int:
    """``python readme_blocks.py DOCUMENT WORKDIR REPORT``: run and report as JSON."""
    document, workdir, report_path = (Path(arg).resolve() for arg in argv)
    # A reader's interpreter does not have this test directory on its path.
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [entry for entry in sys.path if entry and Path(entry).resolve() != Path(here)]
    for name in READER_UNSET:
        os.environ.pop(name, None)
    report: dict[str, Any]
    try:
        skipped: list[str] = []
        ran = run(document, workdir, skipped)
        report = {"ok": True, "ran": ran, "skipped": skipped}
    except (BlockFailed, CollectError) as err:
        report = {"ok": False, "line": getattr(err, "line", None), "message": str(err)}
    report_path.write_text(json.dumps(report), encoding="utf-8")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
