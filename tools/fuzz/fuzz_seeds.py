"""The fuzzer's seeds and dictionary (fuzz_execute.py): seed inputs from the
examples in the engine's KIP cards and from the property suite's strategies,
in the encoding fuzz_target.decode reads, and a libFuzzer dictionary of KIP
tokens."""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

_KIP_BLOCK = re.compile(r"```(kip|prolog|text|json)\n(.*?)```", re.S)
_PLACEHOLDER = re.compile(r"(?<![\w\"]):([A-Za-z_][A-Za-z0-9_]*)")


def _card_blocks() -> list[tuple[str, str]]:
    """(language, code) of the examples in the texts the engine ships."""
    from anda import tools

    texts = (tools.KIP_SYNTAX, tools.KIP_RECALL_CARD, tools.KIP_FORMATION_CARD)
    blocks = [(lang, body) for text in texts for lang, body in _KIP_BLOCK.findall(text)]
    blocks += [("kip", body) for lang, body in _KIP_BLOCK.findall(tools.SELF_INSTRUCTIONS)]
    return [(lang, body) for lang, body in blocks if lang in ("kip", "prolog", "text", "json")]


def _placeholder_values(command: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in _PLACEHOLDER.findall(command):
        if name in ("n", "limit", "k", "seq", "s", "v"):
            values[name] = 5
        elif name in ("t", "threshold", "confidence"):
            values[name] = 0.5
        else:
            values[name] = f"{name}-1"
    return values


def kip_dictionary(syntax: str) -> str:
    """A libFuzzer dictionary: the card's keywords, symbols and punctuation,
    and the tool-argument keys, so mutations splice whole tokens."""
    tokens = set(re.findall(r"\b[A-Z][A-Z_]{1,}\b", syntax))
    tokens |= set(re.findall(r'"[A-Za-z_][A-Za-z0-9_.]{0,30}"', syntax))
    tokens |= {"?x", "?p", ":p", ":name", "?a.name", "?p.attributes.x", "//", "/*", "*/"}
    tokens |= set("{}()[]:,.!<>=|&\"'\\?") | {"==", "!=", "<=", ">=", "&&", "||", "->"}
    tokens |= {"true", "false", "null", "NaN", "Infinity", "-0", "1e308", "5e-324"}
    tokens |= {"9007199254740991", "9007199254740992", "18446744073709551616"}
    tokens |= {r"\ud800", r"\udfff", r"\u0000", "\x00", "\x1e", "\x1d", "\n"}
    tokens |= {
        f'"{key}"'
        for key in (
            "command", "operations", "parameters", "execution", "mode", "on_error",
            "idempotency_key", "dry_run", "read", "snapshot_token", "op_id", "upsert",
            "relate", "type", "key", "name", "attributes", "subject", "predicate", "object",
            "by", "independent", "sequence", "atomic", "stop", "continue",
        )
    }  # fmt: skip

    def escape(token: str) -> str:
        return "".join(
            chr(b) if 0x20 <= b < 0x7F and chr(b) not in '"\\' else f"\\x{b:02x}"
            for b in token.encode("utf-8", "surrogatepass")
        )

    return "".join(f'"{escape(token)}"\n' for token in sorted(tokens))


def _examples(strategy: Any, count: int) -> list[Any]:
    """``count`` examples of a strategy, derandomized: the same again for the
    same Hypothesis and the same source tree (Hypothesis also draws constants
    it finds in local modules, anda's and this harness's, so editing those
    changes the examples)."""
    from hypothesis import HealthCheck, Phase, given, settings

    drawn: list[Any] = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(value: Any) -> None:
        drawn.append(value)

    collect()
    return drawn


def _json_payload(value: Any) -> str | None:
    try:
        # ASCII escapes carry lone surrogates through as \udXXX.
        return json.dumps(value, ensure_ascii=True, allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        return None


def _has_int_keys(value: Any) -> bool:
    if isinstance(value, dict):
        return any(not isinstance(k, str) or _has_int_keys(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_has_int_keys(v) for v in value)
    return False


def seeds(max_len: int) -> dict[str, bytes]:
    """Seed inputs by name: the engine's card examples and examples of the
    property suite's strategies, in the encoding fuzz_target.decode reads."""
    sys.path.insert(0, str(HERE))
    from fuzz_target import GS, NUL, RS, encode
    from hypothesis import strategies as st

    from anda.testing import strategies as kst

    out: dict[str, bytes] = {}

    def add(source: str, mode: int, payload: str, flags: int = 0) -> None:
        data = encode(mode, payload, flags)
        if len(data) <= max_len:
            out[f"{source}-{hashlib.sha1(data).hexdigest()[:12]}"] = data

    def params_text(parameters: Any) -> str:
        return _json_payload(parameters or {}) or "{}"

    # The engine's own examples.
    for lang, body in _card_blocks():
        if lang == "json":
            add("card", 3, body)
            add("card", 4, body)
            continue
        if lang == "text":  # grammar lines: each statement-like line on its own
            for line in body.splitlines():
                statement = line.split("//")[0].strip()
                if re.match(r"[A-Z]{3,}\b", statement):
                    add("card", 0, statement)
            continue
        values = _placeholder_values(body)
        add("card", 0, body)
        add("card", 1, f"{body}{NUL}{params_text(values)}")
        add("card", 5, f"{body}{NUL}{params_text(values)}")
        add("card", 3, json.dumps({"command": body, "parameters": values}))

    # The property suite's strategies.
    for find in _examples(kst.kql_reads(), 40):
        command, parameters = find.render()
        add("find", 0, find.render_literal())
        add("find", 1, f"{command}{NUL}{params_text(parameters)}")
    for write in _examples(kst.kml_writes(), 40):
        command, parameters = write.render()
        add("write", 0, write.render_literal())
        add("write", 1, f"{command}{NUL}{params_text(parameters)}")
        add("dryrun", 5, f"{command}{NUL}{params_text(parameters)}")
    for command, parameters in _examples(kst.meta_commands(), 25):
        add("meta", 1, f"{command}{NUL}{params_text(parameters)}")
    batches = st.lists(kst.valid_commands(), min_size=1, max_size=5)
    for i, batch in enumerate(_examples(batches, 30)):
        items = [c if i % 2 and not p else f"{c}{NUL}{params_text(p)}" for c, p in batch]
        add("batch", 2, RS.join(items), flags=(i % 4) << 1)
        if i % 5 == 0:
            add("batch", 2, RS.join(c for c, _ in batch) + GS + params_text(batch[0][1]))
    for i, (command, parameters) in enumerate(_examples(kst.valid_commands(), 30)):
        arguments = {"command": command, "parameters": parameters or {}}
        if i % 3 == 0:
            arguments["dry_run"] = True
        add("tool", 3, json.dumps(arguments), flags=8 if i % 4 == 0 else 0)
        add("tool", 4, json.dumps(arguments), flags=8 if i % 4 == 1 else 0)
    for i, batch in enumerate(_examples(batches, 12)):
        operations = [c if i % 2 else {"command": c, "parameters": p or {}} for c, p in batch]
        mode = ("sequence", "independent", "atomic")[i % 3]
        add("tool", 3, json.dumps({"operations": operations, "execution": {"mode": mode}}))
    for i, upserts in enumerate(_examples(st.lists(kst.upserts(), min_size=1, max_size=6), 15)):
        lines = [
            json.dumps(
                {
                    "upsert": {
                        "type": u.concept.type,
                        "key": u.concept.key,
                        "name": u.name,
                        "attributes": u.attributes,
                    }
                }
            )
            for u in upserts
        ]
        # A Person relates to any bare type through one of these predicates.
        first = upserts[0].concept
        predicate = next(
            name
            for name, types in kst.RELATION_PREDICATES.items()
            if types == ("Person", first.type)
        )
        relate = {"subject": ["Person", "seed"], "predicate": predicate}
        lines.append(json.dumps({"relate": {**relate, "object": [first.type, first.key]}}))
        add("bulk", 6, "\n".join(lines), flags=128 | (1 + i % 3) if i % 2 else 0)
    callers = st.tuples(st.text(max_size=12), kst.valid_commands())
    for i, (caller, (command, parameters)) in enumerate(_examples(callers, 15)):
        payload = f"{caller}{NUL}{command}{NUL}{params_text(parameters)}"
        add("caller", 7, payload, flags=128 if i % 3 == 0 else 0)  # 128: this very caller

    # Adversarial input from the suite: parser stress and values anda refuses.
    for text in _examples(kst.adversarial_text(), 40):
        add("adversarial", 0, text)
    probe = 'FIND(?c.name) WHERE { ?c {type: "Person", key: :key} } LIMIT 1'
    for i, value in enumerate(_examples(kst.adversarial_parameters(), 40)):
        parameters = value if isinstance(value, dict) else {"key": value}
        payload = _json_payload(parameters)
        if payload is not None:
            flags = (16 if _has_int_keys(parameters) else 0) | (32 if i % 3 == 0 else 0)
            add("adversarial", 1, f"{probe}{NUL}{payload}", flags)
    return out


def regenerate_seeds(corpus: Path, max_len: int) -> int:
    made = seeds(max_len)
    corpus.mkdir(parents=True, exist_ok=True)
    for old in corpus.iterdir():
        old.unlink()
    for name, data in sorted(made.items()):
        (corpus / name).write_bytes(data)
    size = sum(len(data) for data in made.values())
    print(f"{len(made)} seeds, {size:,} bytes, in {corpus}")
    return 0
