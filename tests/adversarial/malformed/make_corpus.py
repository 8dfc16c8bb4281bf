"""Write the malformed-input corpus: one file per attack, ``<name>.jsonl``, one line each.

    .venv/bin/python tests/adversarial/malformed/make_corpus.py

Each line is a draft that is valid except for one thing, so the refusal must name that
thing; ``expected.json`` says which field and which words. The files are committed; this
script documents how they were made (re-running it rewrites them byte for byte).
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
GOOD = ('"claim":"a gap was measured","confidence":1.0,"evidence":{"type":"gap"},'
        '"kind":"gap","source":{"emitter":"adversary","model":"none","origin":"self"}')


def draft(extra: str) -> bytes:
    """A valid gap draft with ``extra`` (raw JSON members) spliced in first."""
    return ("{" + extra + "," + GOOD + "}").encode("utf-8")


CASES: dict[str, tuple[bytes, str, str]] = {
    # name: (line, field the error names, words the message holds)
    "top_level_array": (b'[{"kind":"gap"}]', "", "a record must be a JSON object, got an array"),
    "top_level_string": (b'"a record"', "", "a record must be a JSON object, got a string"),
    "top_level_number": (b"42", "", "a record must be a JSON object, got a number"),
    "top_level_null": (b"null", "", "a record must be a JSON object, got null"),
    "top_level_bool": (b"true", "", "a record must be a JSON object, got true or false"),
    "deep_arrays_5000": (draft('"meta":{"x":' + "[" * 5000 + "]" * 5000 + "}"),
                         "meta.x[0]", "nested deeper than 64 levels"),
    "deep_objects_5000": (draft('"meta":' + '{"a":' * 5000 + "1" + "}" * 5000),
                          "meta.a.a", "nested deeper than 64 levels"),
    "deep_arrays_100": (draft('"meta":{"x":' + "[" * 100 + "]" * 100 + "}"),
                        "meta.x[0]", "nested deeper than 64 levels"),
    "bare_deep_array": (b"[" * 100000 + b"]" * 100000, "[0]", "nested deeper than 64 levels"),
    "int_5000_digits": (draft('"meta":{"n":' + "9" * 5000 + "}"), "meta.n",
                        "integer of 5000 digits, out of range"),
    "int_over_2_63": (draft('"meta":{"n":' + str(2**63) + "}"), "meta.n",
                      "integer out of range"),
    "negative_int_5000_digits": (draft('"meta":{"n":-' + "1" * 5000 + "}"), "meta.n",
                                 "integer of 5000 digits"),
    "float_overflow": (draft('"meta":{"x":1e999}'), "meta.x", "must be finite"),
    "nan_in_meta": (draft('"meta":{"x":[1,NaN]}'), "meta.x[1]", "must be finite"),
    "infinity": (draft('"meta":{"x":-Infinity}'), "meta.x", "must be finite"),
    "lone_high_surrogate": (draft('"task":"\\ud800"'), "task", "lone surrogate"),
    "lone_low_surrogate": (draft('"meta":{"s":["ok","x\\udfff"]}'), "meta.s[1]",
                           "lone surrogate"),
    "surrogate_in_key": (draft('"meta":{"\\udc00":1}'), "meta.\\udc00",
                         "key contains a lone surrogate"),
    "duplicate_top_key": (draft('"claim":"the first of two claims"'), "claim",
                          "duplicate key"),
    "duplicate_nested_key": (draft('"meta":{"a":1,"b":2,"a":3}'), "meta.a", "duplicate key"),
    "not_utf8": (draft('"task":"caf\u00e9"').replace("é".encode(), b"\xe9"), "",
                 "not UTF-8"),
    "not_json": (b'{"kind": "gap", ', "", "not JSON"),
    # Lines for the nesting scan (over 64 brackets) that a scan restarting at each quote
    # would take hours on (quadratic): an unterminated string of 200,000 escaped quotes,
    # and one of escaped quotes and brackets.
    "nesting_scan_escaped_quotes": (b'{"task":"' + b'\\"' * 200000 + b"[" * 65, "",
                                    "not JSON"),
    "nesting_scan_brackets_in_string": (b'{"meta":{"s":"' + b'\\"[{' * 100000, "",
                                        "not JSON"),
}


def main() -> None:
    expected = {}
    for name, (line, field, words) in CASES.items():
        assert b"\n" not in line, name
        (HERE / f"{name}.jsonl").write_bytes(line + b"\n")
        expected[name] = {"field": field, "message": words}
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
