"""Bad input never crashes: each malformed-line class is refused naming the line and the
field, at emit (CLI and Python API) and once committed (check, verify, status, index,
query), and the good lines around it are appended all the same.

The attack lines are the corpus in ``tests/adversarial/malformed/`` (``expected.json``
names the field and the words of each refusal).
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from drafts import SOURCE, accept_notes, experience, note
from evidence import NO_HOOKS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convergent.cli import cli
from convergent.errors import RecordError
from convergent.hookspecs import hookimpl
from convergent.log import iter_raw_lines
from convergent.plugins import pm
from convergent.recorder import Recorder
from convergent.records import MAX_NESTING, canonical_json, decode_line, validate_draft
from convergent.repo import init_repo

CORPUS = Path(__file__).parent / "adversarial" / "malformed"
EXPECTED: dict[str, dict[str, str]] = json.loads((CORPUS / "expected.json").read_text())
SEGMENT = "data/convergence/records/seg-000001.jsonl"


def bad_line(name: str) -> bytes:
    return (CORPUS / f"{name}.jsonl").read_bytes().rstrip(b"\n")


def refusal(where: str, name: str) -> str:
    """The start of the refusal of corpus case ``name`` at ``where`` (``source:line``)."""
    field = EXPECTED[name]["field"]
    return f"{where}: {field}" if field else f"{where}: {EXPECTED[name]['message']}"


def log_lines(root: Path) -> list[bytes]:
    return [raw for _, _, raw in iter_raw_lines(root)]


def good(n: int) -> bytes:
    return canonical_json(note(n)).encode()


def test_the_corpus_covers_every_class() -> None:
    names = set(EXPECTED)
    for prefix in ("top_level_", "deep_", "int_", "lone_", "duplicate_", "nan", "float"):
        assert any(n.startswith(prefix) for n in names), prefix
    assert {p.stem for p in CORPUS.glob("*.jsonl")} == names


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_decode_line_names_the_field(name: str) -> None:
    with pytest.raises(RecordError) as info:
        decode_line(bad_line(name))
    assert info.value.field.startswith(EXPECTED[name]["field"])
    assert (info.value.field == "") == (EXPECTED[name]["field"] == "")
    assert EXPECTED[name]["message"] in info.value.message


# --- at emit -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_emit_cli_refuses_the_line_and_appends_the_others(records_repo: Path, name: str
                                                          ) -> None:
    before = log_lines(records_repo)
    result = CliRunner().invoke(cli, ["emit", "-", "--repo", str(records_repo)],
                                input=good(1) + b"\n" + bad_line(name) + b"\n" + good(2) + b"\n",
                                catch_exceptions=False)
    assert result.exit_code == 1
    assert result.stderr.startswith(refusal("<stdin>:2", name)), result.stderr
    assert EXPECTED[name]["message"] in result.stderr
    assert "Traceback" not in result.output
    assert "1 line refused; the others were appended" in result.stderr
    ids = [line.split()[0] for line in result.stdout.splitlines()]
    assert len(ids) == 2
    after = log_lines(records_repo)
    assert after[:len(before)] == before
    assert [json.loads(raw)["id"] for raw in after[len(before):]] == ids


def test_emit_lines_api_reports_every_class_in_one_batch(records_repo: Path) -> None:
    names = sorted(EXPECTED)
    lines = [good(0)]
    for i, name in enumerate(names, 1):
        lines += [bad_line(name), good(i)]
    with Recorder(records_repo, verify=False) as recorder:
        outcomes = recorder.emit_lines(lines, source="drafts.jsonl")
    errors = {o.line: str(o.error) for o in outcomes if o.error is not None}
    for i, name in enumerate(names, 1):
        assert errors.pop(2 * i).startswith(refusal(f"drafts.jsonl:{2 * i}", name))
    assert errors == {}
    appended = [o.record["id"] for o in outcomes if o.record is not None]
    assert len(appended) == len(names) + 1
    assert [json.loads(raw)["id"] for raw in log_lines(records_repo)] == appended


def deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize(("patch", "field", "words"), [
    ({"meta": {"x": deep(5000)}}, "meta.x[0]", "nested deeper than"),
    ({"meta": {"x": deep(MAX_NESTING)}}, "meta.x[0]", "nested deeper than"),
    ({"meta": {"n": 10**5000}}, "meta.n", "integer out of range"),
    ({"meta": {"n": -(2**63)}}, "meta.n", "integer out of range"),
    ({"meta": {"x": math.inf}}, "meta.x", "must be finite"),
    ({"task": "\ud800"}, "task", "lone surrogate"),
    ({"meta": {"\udfff": 1}}, "meta.\\udfff", "key contains a lone surrogate"),
    ({"meta": {1: "int key"}}, "meta", "key that is not a string"),
    ({"meta": {"s": {1, 2}}}, "meta.s", "not a JSON value (set)"),
    ({"meta": {"o": object()}}, "meta.o", "not a JSON value (object)"),
], ids=["deep-5000", "deep-bound", "int-digits", "int-magnitude", "inf", "surrogate",
        "surrogate-key", "int-key", "set", "object"])
def test_emit_api_refuses_python_values_naming_the_field(
        records_repo: Path, patch: dict[str, Any], field: str, words: str) -> None:
    draft = experience(1)
    draft.update(patch)
    with Recorder(records_repo, verify=False) as recorder:
        with pytest.raises(RecordError) as info:
            recorder.emit(draft)
        with pytest.raises(RecordError):
            recorder.emit_many([experience(2), draft])
        assert info.value.field.startswith(field) and words in info.value.message
        assert log_lines(records_repo) == []
        # The draft, meta and 62 lists: 64 levels, the bound, is fine.
        recorder.emit(experience(3, meta={"x": deep(MAX_NESTING - 2), "n": 2**63 - 1}))
    assert len(log_lines(records_repo)) == 1


def test_the_nesting_bound_is_the_same_for_lines_and_python_values() -> None:
    at_bound = dict(note(1), meta={"x": deep(MAX_NESTING - 2)})
    decode_line(canonical_json(at_bound).encode())
    over = dict(note(1), meta={"x": deep(MAX_NESTING - 1)})
    with pytest.raises(RecordError, match="nested deeper") as line_error:
        decode_line(canonical_json(over).encode())
    with pytest.raises(RecordError, match="nested deeper") as value_error:
        validate_draft(over)
    assert line_error.value.field == value_error.value.field


@pytest.mark.parametrize("meta", [
    {"s": '\\"[{' * 50000},  # a long string full of brackets and escaped quotes
    {"x": [[[1]], [[2]]] * 30000},  # many short nested arrays
    {"deep": json.loads("[" * (MAX_NESTING - 2) + "]" * (MAX_NESTING - 2)), "s": '"' * 99},
], ids=["brackets_in_a_string", "short_nested_arrays", "at_the_bound"])
def test_honest_lines_full_of_brackets_decode(meta: dict[str, Any]) -> None:
    """The nesting scan's look-alikes: valid lines, far over 64 brackets, within the bound."""
    line = canonical_json({**note(1), "meta": meta}).encode()
    assert line.count(b"[") + line.count(b"{") > MAX_NESTING
    assert decode_line(line)["meta"] == meta


@pytest.mark.parametrize("value", [[note(1)], "a record", 42, None, True])
def test_emit_api_refuses_a_draft_that_is_not_an_object(records_repo: Path, value: Any
                                                        ) -> None:
    with Recorder(records_repo, verify=False) as recorder, \
            pytest.raises(RecordError, match="must be a JSON object"):
        recorder.emit(value)


class RaisingVerifier:
    """A plugin's execution verifier with a bug: it raises."""

    @hookimpl
    def register_verifiers(self, register: Callable[[str, Callable[..., Any]], None]) -> None:
        def verify(record: dict[str, Any], ctx: object) -> Any:
            raise RuntimeError(f"plugin bug on {record['task']}")

        register("execution", verify)


@pytest.fixture
def raising_verifier() -> Iterator[None]:
    plugin = RaisingVerifier()
    pm.register(plugin, "test-raising-verifier")
    yield
    pm.unregister(plugin)


@pytest.mark.usefixtures("raising_verifier")
def test_a_raising_verifier_costs_only_its_own_line(records_repo: Path) -> None:
    lines = [good(1), canonical_json(experience(1)).encode(), good(2)]
    with Recorder(records_repo) as recorder:
        outcomes = recorder.emit_lines(lines, source="x")
    assert [o.record is not None for o in outcomes] == [True, False, True]
    assert str(outcomes[1].error) == ("x:2: could not be recorded: RuntimeError: plugin bug "
                                      "on Write times_1(a, b) returning a * b + 1.")
    assert len(log_lines(records_repo)) == 2


def test_good_lines_are_appended_even_when_the_input_breaks_off(records_repo: Path) -> None:
    def lines() -> Iterator[bytes]:
        yield good(1)
        yield good(2)
        raise OSError("the input went away")

    with Recorder(records_repo, verify=False) as recorder, \
            pytest.raises(OSError, match="went away"):
        recorder.emit_lines(lines())
    assert len(log_lines(records_repo)) == 2


# --- committed -----------------------------------------------------------------------------


def git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                          check=check)


def test_committed_bad_lines_are_named_never_crashed_on(records_repo: Path) -> None:
    """Every class in one commit (past the hooks: a clone without them): check, verify, status,
    index and query each name the lines or go on without them."""
    accept_notes(records_repo)
    with Recorder(records_repo, verify=False) as recorder:
        recorder.emit(note(0))
        recorder.commit()
    names = sorted(EXPECTED)
    with (records_repo / SEGMENT).open("ab") as fh:
        for name in names:
            fh.write(bad_line(name) + b"\n")
    lineno = {name: i for i, name in enumerate(names, 2)}
    git(records_repo, "add", SEGMENT)
    hooked = git(records_repo, "commit", "-q", "-m", "tamper", check=False)
    assert hooked.returncode == 1 and "Traceback" not in hooked.stderr
    assert f"{SEGMENT}:2: schema:" in hooked.stderr
    git(records_repo, *NO_HOOKS, "commit", "-q", "-m", "tamper")

    def run(*args: str) -> Any:
        result = CliRunner().invoke(cli, [*args, "--repo", str(records_repo)],
                                    catch_exceptions=False)
        assert "Traceback" not in result.output
        return result

    check = run("check", "--all")
    assert check.exit_code == 1
    verify = run("verify")
    assert verify.exit_code == 1
    status = run("status", "--json")
    assert status.exit_code == 0
    unreadable = json.loads(status.stdout)["unreadable_lines"]
    assert json.loads(status.stdout)["log"]["records"] == 1
    for name in names:
        where = f"{SEGMENT}:{lineno[name]}"
        assert refusal(f"{where}: schema", name) in check.stderr, name
        assert refusal(where, name) in verify.stderr, name
        assert any(p.startswith(refusal(f"{where}: schema", name)) for p in unreadable), name
    assert len(unreadable) == len(names)
    text = run("status")
    assert text.exit_code == 0 and f"{len(names)} line(s) of the log are not records" in (
        text.stdout)
    index = run("index")
    assert index.exit_code == 0
    assert f"not indexed: seg-000001.jsonl:{lineno['top_level_array']}: a record must be" in (
        index.stderr)
    query = run("query", "gap")
    assert query.exit_code == 0 and len(query.stdout.splitlines()) == 1


def test_committed_lines_that_are_json_but_not_records_do_not_crash_readers(
        records_repo: Path) -> None:
    """Objects of the wrong shape (every field of the wrong type) reach status, index
    and the history gates as 'not a record', never as a crash."""
    shapes = [{"kind": "gap", "evidence": "x", "claim": [1], "source": 3},
              {"kind": "cycle", "evidence": {"tripwire": "x"}, "id": 5},
              {"kind": "proposal", "links": 7, "claim": {"a": 1}, "id": "sha256:x",
               "confidence": "high", "verdict": [], "task": [], "response": {}, "ts": 1}]
    with (records_repo / SEGMENT).open("ab") as fh:
        for shape in shapes:
            fh.write(canonical_json(shape).encode() + b"\n")
    git(records_repo, "add", SEGMENT)
    git(records_repo, *NO_HOOKS, "commit", "-q", "-m", "tamper")
    for args in (["check", "--all"], ["verify"], ["status"], ["index"], ["query", "x"]):
        result = CliRunner().invoke(cli, [*args, "--repo", str(records_repo)],
                                    catch_exceptions=False)
        assert "Traceback" not in result.output
        assert result.exit_code == (1 if args[0] in ("check", "verify") else 0), args


# --- fuzz ----------------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20)
FIELDS = ("kind", "claim", "evidence", "confidence", "source", "links", "task", "response",
          "meta", "v", "id", "ts", "verdict")


def mutated(data: st.DataObject) -> bytes:
    """A good draft with one field replaced by random JSON (or random bytes)."""
    draft = dict(experience(1), source=dict(SOURCE))
    draft[data.draw(st.sampled_from(FIELDS))] = data.draw(JSON)
    return json.dumps(draft, allow_nan=True).encode("utf-8", "surrogatepass")


FUZZ_LINE = st.one_of(
    st.binary(max_size=200),
    JSON.map(lambda v: json.dumps(v, allow_nan=True).encode("utf-8", "surrogatepass")),
    st.integers(1, 3000).map(lambda n: b'{"meta":' + b"[" * n + b"]" * n + b"}"),
    st.integers(1, 6000).map(lambda n: b'{"confidence":' + b"7" * n + b"}"),
)


@pytest.fixture(scope="module")
def fuzz_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_repo(tmp_path_factory.mktemp("fuzz") / "records", install_hooks=False)


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_emit_never_raises_and_never_loses_a_good_line(fuzz_repo: Path,
                                                           data: st.DataObject) -> None:
    lines = data.draw(st.lists(FUZZ_LINE, max_size=5))
    lines += [mutated(data) for _ in range(data.draw(st.integers(0, 3)))]
    goods = data.draw(st.lists(st.integers(0, 10**6), min_size=1, max_size=3))
    batch = [good(n) for n in goods] + [line.replace(b"\n", b" ") for line in lines]
    batch = data.draw(st.permutations(batch))
    before = len(log_lines(fuzz_repo))
    with Recorder(fuzz_repo, verify=False) as recorder:
        outcomes = recorder.emit_lines(batch, source="fuzz")
    appended = [o for o in outcomes if o.record is not None]
    refused = [o for o in outcomes if o.error is not None]
    assert len(appended) + len(refused) == sum(1 for line in batch if line.strip())
    claims = {o.record["claim"] for o in appended if o.record is not None}
    assert {f"gap {n} measured" for n in goods} <= claims
    assert len(log_lines(fuzz_repo)) == before + len(appended)
    for outcome in refused:
        assert str(outcome.error).startswith(f"fuzz:{outcome.line}: ")


def test_a_measured_lever_line_with_malformed_links_is_refused_never_crashed_on(
        records_repo: Path) -> None:
    """A lever line measured on a committed evaluation set, whose links hold an object (not
    a record id), committed past the hooks: the levers-first gate reads its links through
    the record type and `check` names the line instead of raising (it raised TypeError)."""
    from gapflow import write_eval

    ref = write_eval(records_repo)
    sha = hashlib.sha256((records_repo / ref).read_bytes()).hexdigest()
    line = {"kind": "lever", "claim": "lever route: measured", "confidence": 1.0,
            "source": SOURCE, "links": [{"not": "an id"}],
            "evidence": {"type": "lever", "lever": "route", "gap": "strings", "measured": 0.5,
                         "eval": ref, "eval_sha256": sha,
                         "measurements": [{"member": "base", "pass_rate": 0.5}]}}
    with (records_repo / SEGMENT).open("ab") as fh:
        fh.write(canonical_json(line).encode() + b"\n")
    git(records_repo, "add", SEGMENT, ref)
    git(records_repo, *NO_HOOKS, "commit", "-q", "-m", "a lever with an object in its links")
    result = CliRunner().invoke(cli, ["check", "--all", "--repo", str(records_repo)],
                                catch_exceptions=False)
    assert result.exit_code == 1, result.output
    assert f"{SEGMENT}:1: schema: links: must be a list of record ids" in result.stderr
    assert f"{SEGMENT}:1: levers-first: a measured lever try must link the gap record" in (
        result.stderr)


@pytest.mark.parametrize(("links", "ids_as"), [
    ("object", "keys"),  # {"<gap id>": 1, "<try id>": 1, ...}: set() of it is its keys
    ("list", "plus_an_object"),  # the ids, then an object: set() of it raised TypeError
])
def test_a_proposal_line_whose_links_are_not_ids_is_refused_never_crashed_on(
        records_repo: Path, monkeypatch: pytest.MonkeyPatch, links: str, ids_as: str) -> None:
    """A proposal line past the hooks for a gap whose levers were all tried in order, its
    links malformed: the levers-first gate, run alone (as the pre-commit framework's
    `convergent-gate-levers-first` does), reads them through the record type, so an object
    holding the needed ids as keys links nothing, and an object in the list is not an id
    (before: the object passed the gate; the list crashed `check` with TypeError)."""
    from gapflow import gap, levers, skip_git_hooks

    with monkeypatch.context() as m:
        skip_git_hooks(m)
        needed = [gap(records_repo)["id"], *(t["id"] for t in levers(records_repo))]
    value: Any = dict.fromkeys(needed, 1) if links == "object" else [*needed, {"not": "an id"}]
    line = {"kind": "proposal", "claim": "distill gap strings", "confidence": 1.0,
            "source": SOURCE, "links": value, "id": "sha256:" + "ab" * 32,
            "ts": "2030-01-01T00:00:00.000000Z", "v": 1,
            "evidence": {"type": "proposal", "gap": "strings", "levers": needed[1:]}}
    with (records_repo / SEGMENT).open("ab") as fh:
        fh.write(canonical_json(line).encode() + b"\n")
    lineno = len(log_lines(records_repo))
    git(records_repo, "add", SEGMENT)
    git(records_repo, *NO_HOOKS, "commit", "-q", "-m", "a proposal with malformed links")
    def check(*gates: str) -> Any:
        result = CliRunner().invoke(cli, ["check", "--all", *gates, "--repo",
                                          str(records_repo)], catch_exceptions=False)
        assert "Traceback" not in result.output
        return result

    full = check()
    assert full.exit_code == 1, full.output
    assert f"{SEGMENT}:{lineno}: schema: links: must be a list of record ids" in full.stderr
    if links == "object":
        for result in (full, check("--gate", "levers-first")):
            assert result.exit_code == 1, result.output
            assert f"{SEGMENT}:{lineno}: levers-first: proposal does not link the records " \
                   "it relies on" in result.stderr, result.stderr


@pytest.mark.parametrize("forged_id", [None, 5, True, ["sha256:x"]],
                         ids=["null", "number", "bool", "list"])
def test_a_proposal_whose_id_is_not_a_string_is_approved_by_nothing(
        records_repo: Path, forged_id: Any) -> None:
    """A proposal line whose id is not a string, and an approval naming that id as text
    ("None", "5", ...), committed past the hooks: the line is no record to the readers of
    history, so the cycle finds no proposal by that name and refuses there, as before the
    typed refactor (Record.id spelt the id with str(), so the approval named "None" went on
    to the Git checks for the proposal whose id is null, and crashed on them; a list id
    crashed the cycle's id set with TypeError)."""
    from convergent.trainer.cycle import due_proposals

    spelt = str(forged_id)
    proposal = {"kind": "proposal", "claim": "distill gap strings", "confidence": 1.0,
                "source": SOURCE, "links": [], "id": forged_id,
                "ts": "2030-01-01T00:00:00.000000Z", "v": 1,
                "evidence": {"type": "proposal", "gap": "strings",
                             "manifest": {"experiences": []}}}
    approval = {"kind": "approval", "claim": f"approval of {spelt}", "confidence": 1.0,
                "source": SOURCE, "links": [], "id": "sha256:" + "cd" * 32,
                "ts": "2030-01-01T00:00:01.000000Z", "v": 1,
                "evidence": {"type": "approval", "proposal": spelt, "commit": "0" * 40,
                             "approved_by": "Ada Operator <ada@example.com>"}}
    with (records_repo / SEGMENT).open("ab") as fh:
        for record in (proposal, approval):
            fh.write(canonical_json(record).encode() + b"\n")
    git(records_repo, "add", SEGMENT)
    git(records_repo, *NO_HOOKS, "commit", "-q", "-m", "a proposal without a string id")
    due, refused = due_proposals(records_repo)
    assert due == []
    assert refused == [f"approval {approval['id']} names proposal {spelt}, which is not in "
                       "the committed log"]
    # The line is no record to any reader of history: its id is named, not spelt.
    from convergent.history import read_log

    records, problems = read_log(records_repo)
    assert [r["id"] for r in records] == [approval["id"]]
    assert problems == [f"{SEGMENT}:1: schema: id: must be a string, got "
                        f"{type(forged_id).__name__.replace('NoneType', 'null')}"]


@pytest.mark.parametrize("commit", ["0" * 40, "f" * 40, "0" * 64],
                         ids=["zeros", "absent-sha1", "sha256-length"])
def test_an_approval_naming_a_commit_that_is_not_there_is_refused_never_crashed_on(
        records_repo: Path, commit: str) -> None:
    """An approval line naming a full-length commit id that no object has, committed past
    the hooks: the approval gate says the commit does not exist (GitPython resolved the id
    lazily, so reading its parents raised ValueError out of `check`)."""
    approval = {"kind": "approval", "claim": "approval", "confidence": 1.0, "source": SOURCE,
                "links": [], "evidence": {"type": "approval", "proposal": "sha256:" + "ef" * 32,
                                          "commit": commit, "approved_by": "Ada Operator"}}
    with (records_repo / SEGMENT).open("ab") as fh:
        fh.write(canonical_json(approval).encode() + b"\n")
    git(records_repo, "add", SEGMENT)
    git(records_repo, *NO_HOOKS, "commit", "-q", "-m", "an approval of a commit not there")
    for gates in (["--gate", "approval"], []):
        result = CliRunner().invoke(cli, ["check", "--all", *gates, "--repo",
                                          str(records_repo)], catch_exceptions=False)
        assert "Traceback" not in result.output
        assert result.exit_code == 1, result.output
        assert f"{SEGMENT}:1: approval: approval commit {commit} does not exist" in (
            result.stderr), result.stderr


@pytest.mark.parametrize(("kind", "drop", "exit_code"), [
    ("gap", "ts", 1), ("gap", "id", 1), ("gap", "target", 1),
    ("lever", "ts", 0), ("lever", "id", 0),
], ids=["gap-no-ts", "gap-no-id", "gap-no-target", "lever-no-ts", "lever-no-id"])
def test_a_gap_or_lever_line_without_id_ts_or_target_is_refused_never_crashed_on(
        records_repo: Path, monkeypatch: pytest.MonkeyPatch, kind: str, drop: str,
        exit_code: int) -> None:
    """After a gap and its three lever tries, a hand-made line past the hooks repeats the
    gap (the latest, which counts) or the last try, without its id, ts or target:
    `convergent propose` refuses the gap (nothing can order tries after it, link it or
    compare with it), and ignores the try (the honest one counts; it is what the
    proposal links), instead of raising KeyError."""
    from gapflow import gap, levers, skip_git_hooks

    with monkeypatch.context() as m:
        skip_git_hooks(m)
        the_gap = gap(records_repo)
        tries = levers(records_repo)
    line = dict(the_gap if kind == "gap" else tries[-1])
    if drop == "target":
        line["evidence"] = {k: v for k, v in line["evidence"].items() if k != "target"}
    else:
        del line[drop]
    with (records_repo / SEGMENT).open("ab") as fh:
        fh.write(canonical_json(line).encode() + b"\n")
    git(records_repo, "add", SEGMENT)
    git(records_repo, *NO_HOOKS, "commit", "-q", "-m", f"a {kind} line without {drop}")
    result = CliRunner().invoke(cli, ["propose", "--gap", "strings", "--repo",
                                      str(records_repo)], catch_exceptions=False)
    assert "Traceback" not in result.output
    assert result.exit_code == exit_code, result.output
    if kind == "gap":
        assert "gap 'strings' (" in result.stderr and "has no id, ts or numeric " \
               "evidence.target: measure it again" in result.stderr, result.stderr
    else:
        assert f"`{the_gap['id'][:19]}`" in result.stdout and f"`{tries[-1]['id'][:19]}`" in (
            result.stdout)
