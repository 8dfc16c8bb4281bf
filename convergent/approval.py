"""The approval policy, in one place: is this proposal approved, by whom, by which commit.

The answer comes from Git alone (:func:`approval_of`). A proposal is approved when the
commit of the main line (the first-parent history of the main branch) that brought its
record in is a *merge* whose first parent lacks the record and another parent has it,
whose *author* is a configured operator (``[operators] allowed``) and, with
``require_signed = true``, whose signature ``git verify-commit`` accepts (SSH signatures
checked against ``[operators] allowed_signers``, GPG against the local keyring).

Merges made by a Git host's web UI qualify: the host records the person who pressed
"merge" as the author (the committer is the host itself, so the committer is not
checked). Without signatures, anyone who can commit can write any author name: that is
said plainly by ``status`` and ``check`` (:func:`unsigned_warning`).

Who is an operator is itself judged by Git: a commit is judged by the policy (the
``[operators]`` and ``[approval]`` tables of the config, and the allowed-signers file they
name) committed at its first parent (:func:`policy_before`), never by the working tree nor
by the commit itself. The policy changes only in an operator's commit judged that way
(:func:`policy_change_problems`), so nobody can add themselves, or their key, and then
approve.

``approval`` records are a cache of this answer, written by ``convergent on-merge``. The
``approval`` gate and the cycle re-derive it and refuse a record that Git does not back
(:func:`record_problems`); the first approval record of a proposal is the one that counts
(:func:`approval_records`).

Weights move only by the people the same policy names: a commit that registers an
adapter, appends a ``cycle`` or ``promotion`` record or changes ``ACTIVE`` must be an
operator's own commit or one by a listed cycle runner (``[operators] cycle_runners``),
judged the same way (:func:`weight_commit_problems`; :func:`pending_weight_problems` for
the commit not made yet).
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git

from convergent.config import Config, config_at, resolve_config
from convergent.errors import ConvergentError
from convergent.gitops import head_sha, open_repo, read_path_at
from convergent.layout import CONFIG_FILE, RECORDS_DIR
from convergent.records import Record, typed

DEFAULT_MAIN_BRANCH = "main"
# The config tables that say who approves (operators, signatures, the main branch).
POLICY_TABLES = ("operators", "approval")


class ApprovalError(ConvergentError):
    """An approval could not be recorded, claimed or relied on (the message says why)."""


@dataclass(frozen=True)
class Approval:
    """Git's answer for one proposal at one revision of the main line.

    Approved when ``problems`` is empty; then ``merge`` is the approving merge commit,
    ``approved_by`` its author and ``proposal_commit`` the commit (on the merged branch)
    that added the proposal record.
    """

    proposal: str
    merge: str | None = None
    approved_by: str | None = None
    proposal_commit: str | None = None
    signed: bool = False
    problems: tuple[str, ...] = ()

    @property
    def approved(self) -> bool:
        return not self.problems and self.merge is not None


def person(actor: git.Actor) -> str:
    return f"{actor.name} <{actor.email}>"


def _listed(config: Config, key: str) -> set[str]:
    """The ``Name <email>`` entries of ``[operators] <key>`` (a list of strings; anything
    else names nobody)."""
    value = config["operators"].get(key, [])
    return {v for v in value if isinstance(v, str)} if isinstance(value, list) else set()


def is_operator(config: Config, who: str) -> bool:
    return who in _listed(config, "allowed")


def moves_weights(config: Config, who: str) -> bool:
    """Whether ``who`` may make a weight-moving commit: an operator or a listed cycle
    runner (``[operators] cycle_runners``)."""
    return is_operator(config, who) or who in _listed(config, "cycle_runners")


def signatures_required(config: Config) -> bool:
    return bool(config["operators"].get("require_signed"))


def unsigned_warning(config: Config) -> str | None:
    """What ``status`` and ``check`` say when approvals need no signature (else None)."""
    if signatures_required(config):
        return None
    return ("approvals are unsigned ([operators] require_signed = false): any committer can "
            "spoof an operator by writing their name; require signed merges (see "
            "docs/operators.md, 'Signed approvals')")


def main_branch(config: Config) -> str:
    """The branch whose first-parent line approvals, cycles and ACTIVE live on."""
    return str(config["operators"].get("main_branch") or DEFAULT_MAIN_BRANCH)


def require_main_branch(repo: git.Repo, config: Config, what: str) -> None:
    """Refuse unless HEAD is the main branch, checked out."""
    branch = main_branch(config)
    current = None if repo.head.is_detached else repo.active_branch.name
    if current != branch:
        raise ApprovalError(f"{what} runs on the main branch {branch!r} ([operators] "
                            f"main_branch), but HEAD is {current or 'detached'}: "
                            f"`git checkout {branch}` first")


def current_identity(repo: git.Repo) -> str:
    """``Name <email>`` git would write as the author of the next commit."""
    ident = repo.git.var("GIT_AUTHOR_IDENT")
    return ident[:ident.rindex(">") + 1]


def require_operator(root: Path, config: Config) -> str:
    who = current_identity(open_repo(root))
    if not is_operator(config, who):
        raise ApprovalError(f"{who} is not a configured operator ([operators] allowed in "
                            ".convergent.toml): only an operator's merge approves")
    return who


def policy_before(repo: git.Repo, sha: str, fallback: Config | None = None
                  ) -> tuple[Config, str]:
    """The policy that judges commit ``sha``, and the revision it is committed at: the
    policy in force at its first parent (:func:`policy_in_force`); a root commit, or the
    commit that brings the first config, is judged by its own (nothing came before); in
    a repo that never committed a config, ``fallback`` (default: nobody is an operator)."""
    commit = repo.commit(sha)
    if commit.parents:
        found = policy_in_force(repo, commit.parents[0].hexsha)
        if found is not None:
            return found
    own = config_at(repo, commit.hexsha) or fallback or resolve_config({})
    return own, commit.hexsha


def policy_in_force(repo: git.Repo, rev: str) -> tuple[Config, str] | None:
    """The policy in force at ``rev`` and the commit it is committed at (None: no config
    yet): along ``rev``'s first-parent line, the first config, then each change of it made
    by an operator's commit as judged by the policy in force before it. A change that
    was not an operator's (made past the hooks) is not in force: whoever made themselves an
    operator that way approves nothing."""
    sha = repo.commit(rev).hexsha
    return _policy_in_force(str(repo.working_tree_dir or repo.git_dir), sha)


@functools.lru_cache(maxsize=1024)
def _policy_in_force(root: str, sha: str) -> tuple[Config, str] | None:
    # Keyed by commit sha: commits never change (replace refs and grafts are ignored).
    repo = open_repo(Path(root))
    touching = _first_parent_commits(repo, sha, [CONFIG_FILE])
    signers = {named[1] for c in touching
               if (config := config_at(repo, c)) is not None
               and (named := _signers_path(Path(root), config)) is not None and named[1]}
    if signers:
        touching = _first_parent_commits(repo, sha, [CONFIG_FILE, *sorted(signers)])
    current: tuple[Config, str] | None = None
    for commit in touching:
        config = config_at(repo, commit)
        if current is None:
            current = None if config is None else (config, commit)
            continue
        state = _policy_state(Path(root), repo, commit, config)
        if state == _policy_state(Path(root), repo, current[1], current[0]):
            continue
        if not _judged_problems(Path(root), repo, commit, *current) or any(
                _in_force_as_is(root, repo, parent.hexsha, state)
                for parent in repo.commit(commit).parents[1:]):
            current = (config or resolve_config({}), commit)
    return current


def _in_force_as_is(root: str, repo: git.Repo, rev: str, state: tuple[Any, ...]) -> bool:
    """Whether a merge takes, as it is, the policy in force on a merged parent's line."""
    found = _policy_in_force(root, rev)
    return found is not None and state == _policy_state(Path(root), repo, rev,
                                                         config_at(repo, rev)) == (
        _policy_state(Path(root), repo, found[1], found[0]))


def _first_parent_commits(repo: git.Repo, sha: str, paths: list[str]) -> list[str]:
    return repo.git.rev_list("--first-parent", "--reverse", sha, "--", *paths).split()


def _signers_path(root: Path, config: Config) -> tuple[Path, str | None] | None:
    """The allowed-signers file the policy names: its path, and its path in the repo (None
    when it lies outside, as an operator's own file on this machine); None: none named."""
    signers = str(config["operators"].get("allowed_signers") or "")
    if not signers:
        return None
    path = (root / signers).resolve()
    try:
        return path, path.relative_to(root.resolve()).as_posix()
    except ValueError:
        return path, None


@contextmanager
def allowed_signers_at(root: Path, config: Config, rev: str | None
                       ) -> Iterator[tuple[Path | None, str | None]]:
    """(file, None) with the allowed signers ``config`` names as committed at ``rev`` (a
    temporary copy; None: the working tree's, for a commit not made yet), or (None, why
    not). A key added to the file later, or only in the working tree, signs nothing."""
    named = _signers_path(root, config)
    if named is None:
        yield None, ("no [operators] allowed_signers file to check the signature against "
                     "(set it in .convergent.toml)")
        return
    path, relpath = named
    if relpath is None or rev is None:
        yield (path, None) if path.is_file() else (None, f"{path} does not exist")
        return
    data = read_path_at(open_repo(root), rev, relpath)
    if data is None:
        yield None, f"the allowed signers file {relpath} is not committed at {rev[:12]}"
        return
    with tempfile.TemporaryDirectory(prefix="convergent-signers-") as tmp:
        copy = Path(tmp) / "allowed_signers"
        copy.write_bytes(data)
        yield copy, None


def signature_problem(root: Path, config: Config, rev: str, sha: str) -> str | None:
    """None when the commit's signature verifies against the signers committed at ``rev``
    (SSH; GPG: the local keyring), else why not."""
    repo = open_repo(root)
    with allowed_signers_at(root, config, rev) as (signers, missing):
        if signers is None and _signers_path(root, config) is not None:
            return f"signature does not verify: {missing}"
        args = ["-c", f"gpg.ssh.allowedSignersFile={signers}"] if signers else []
        try:
            repo.git.execute(["git", *args, "verify-commit", sha], with_extended_output=True)
        except git.GitCommandError as exc:
            detail = (exc.stderr or "").strip().splitlines()
            return f"signature does not verify: {detail[-1] if detail else 'unsigned'}"
    return None


def operator_commit_problems(root: Path, sha: str, fallback: Config | None = None
                             ) -> list[str]:
    """Why ``sha`` is not an operator's own commit (empty: it is), by the policy in force
    before it (:func:`policy_before`, ``fallback`` as there): its author is a configured
    operator and, when signatures are required, its signature verifies against the
    signers committed then."""
    repo = open_repo(root)
    return _judged_problems(root, repo, sha, *policy_before(repo, sha, fallback))


WEIGHT_MOVERS = "neither a configured operator nor a listed cycle runner"


def weight_commit_problems(root: Path, sha: str, fallback: Config | None = None
                           ) -> list[str]:
    """Why ``sha`` may not move weights (empty: it may): its author is a configured
    operator or a listed cycle runner by the policy in force before it (as
    :func:`operator_commit_problems` judges), signed when signatures are required."""
    repo = open_repo(root)
    return _judged_problems(root, repo, sha, *policy_before(repo, sha, fallback),
                            runners=True)


def _judged_problems(root: Path, repo: git.Repo, sha: str, policy: Config, rev: str, *,
                     runners: bool = False) -> list[str]:
    author = person(repo.commit(sha).author)
    problems = []
    if runners and not moves_weights(policy, author):
        problems.append(f"commit {sha[:12]} was made by {author}, who is {WEIGHT_MOVERS}")
    elif not runners and not is_operator(policy, author):
        problems.append(f"commit {sha[:12]} was made by {author}, who is not a configured "
                        "operator ([operators] allowed in .convergent.toml)")
    if signatures_required(policy):
        problem = signature_problem(root, policy, rev, sha)
        if problem:
            problems.append(f"commit {sha[:12]}: {problem}")
    return problems


def pending_commit_problems(root: Path, fallback: Config) -> list[str]:
    """Why the next commit (staged, as the current git identity) would not be an operator's,
    by the policy committed at HEAD (``fallback``, the staged config, before the first
    one); its signature is checked on the commit (reference-transaction hook, ``check``)."""
    who, policy = _pending(root, fallback)
    if is_operator(policy, who):
        return []
    return [f"{who} is not a configured operator ([operators] allowed, as committed)"]


def pending_weight_problems(root: Path, fallback: Config) -> list[str]:
    """Why the next commit (as the current git identity) may not move weights, by the
    policy committed at HEAD (as :func:`pending_commit_problems`); its signature is checked
    on the commit."""
    who, policy = _pending(root, fallback)
    if moves_weights(policy, who):
        return []
    return [f"{who} is {WEIGHT_MOVERS}, as committed"]


def _pending(root: Path, fallback: Config) -> tuple[str, Config]:
    """The next commit's author and the policy that judges it."""
    repo = open_repo(root)
    head = head_sha(repo)
    found = None if head is None else policy_in_force(repo, head)
    return current_identity(repo), fallback if found is None else found[0]


def _policy_tables(config: Config) -> dict[str, Any]:
    return {table: config.get(table) for table in POLICY_TABLES}


def _policy_state(root: Path, repo: git.Repo, rev: str | None, config: Config | None
                  ) -> tuple[Any, ...]:
    """What the policy is at ``rev`` (None: the index), to compare: its tables and the
    blob of the signers file it names."""
    if config is None:
        return (None,)
    named = _signers_path(root, config)
    blob = None
    if named is not None and named[1] is not None:
        where = f":{named[1]}" if rev is None else f"{rev}:{named[1]}"
        blob = repo.git.rev_parse("--verify", "-q", where, with_exceptions=False).strip()
    return _policy_tables(config), blob


def policy_change_problems(root: Path, before_rev: str | None, after: Config | None,
                           *, commit: str | None, others: tuple[str, ...] = ()
                           ) -> list[tuple[str, str]]:
    """(path, why) when a change alters the operator policy and is not an operator's own
    commit, judged by the policy in force at ``before_rev`` (the first parent, or HEAD for
    the staged change: ``commit`` None). ``after`` is the changed side's config. A change
    back to the policy in force needs nobody's leave; a merge may take the policy of one of
    its ``others`` parents as it is (the commits that changed it there are judged on their
    own; the policy in force follows only the first-parent line). The first config of a
    repo needs nobody's leave either: no policy came before it."""
    repo = open_repo(root)
    found = policy_in_force(repo, before_rev) if before_rev is not None else None
    if found is None or before_rev is None:
        return []
    before, before_at = found
    state = _policy_state(root, repo, commit, after)
    # Unchanged from the first parent, or back to the policy in force: nothing to judge.
    unchanged = [before_rev, *others] if others else [before_rev]
    if state == _policy_state(root, repo, before_at, before) or any(
            state == _policy_state(root, repo, rev, config_at(repo, rev)) for rev in unchanged):
        return []
    where = []
    tables = [t for t in POLICY_TABLES if after is None or before.get(t) != after.get(t)]
    if tables:
        where.append((CONFIG_FILE, "[" + "], [".join(tables) + "]"))
    named = _signers_path(root, before)
    if not tables and named is not None and named[1] is not None:
        where.append((named[1], f"the allowed signers file {named[1]}"))
    who = operator_commit_problems(root, commit) if commit else pending_commit_problems(
        root, before)
    if not who:
        return []
    return [(path, f"the operator policy ({what}) changes only in an operator's commit, "
             f"judged by the policy committed before it: {'; '.join(who)}")
            for path, what in where]


def _line_needle(record_id: str) -> str:
    # Canonical JSON: quotes inside strings are escaped, so links and references in text do
    # not match it; but a nested object with an "id" key spells it too (an embedded copy):
    # the commits it finds are candidates, :func:`_holds_record` says which hold the line.
    return f'"id":"{record_id}"'


def _holds_record(repo: git.Repo, rev: str, record_id: str, needle: str) -> bool:
    """Whether the log at ``rev`` holds the record ``record_id`` as a line of its own."""
    from convergent.history import parsed_record

    try:
        out = repo.git.grep("-h", "-F", "-e", needle, rev, "--", RECORDS_DIR)
    except git.GitCommandError:  # exit 1: no line holds the text
        return False
    return any((record := parsed_record(line.encode("utf-8"))) is not None
               and record.get("id") == record_id for line in out.splitlines())


def _first_adding(repo: git.Repo, record_id: str, rev: str, *, first_parent: bool
                  ) -> str | None:
    """The oldest commit of ``rev``'s history (first-parent line only, when asked) that
    brought the record's own line into the log (its first parent, or any parent off the
    first-parent line, lacked it): a copy of the id nested in another record does not."""
    needle = _line_needle(record_id)
    args = ["--first-parent"] if first_parent else []
    try:
        out = repo.git.log(*args, "--reverse", "--format=%H %P", f"-S{needle}", rev, "--",
                           RECORDS_DIR)
    except git.GitCommandError:  # no such revision (e.g. no commit yet)
        return None
    for row in out.splitlines():
        commit, *parents = row.split()
        before = parents[:1] if first_parent else parents
        if _holds_record(repo, commit, record_id, needle) and not any(
                _holds_record(repo, p, record_id, needle) for p in before):
            return commit
    return None


def approval_of(root: Path, proposal_id: str, at: str = "HEAD") -> Approval:
    """Whether the proposal is approved on ``at``'s main line, by whom and by which merge
    (judged by the policy committed before that merge)."""
    repo = open_repo(root)
    brought = _first_adding(repo, proposal_id, at, first_parent=True)
    if brought is None:
        return Approval(proposal_id, problems=(
            f"proposal {proposal_id} is not in the committed history of {at}",))
    merge = repo.commit(brought)
    if len(merge.parents) < 2:
        return Approval(proposal_id, problems=(
            f"commit {brought[:12]} brought proposal {proposal_id} into the main line "
            "without a merge: a proposal is approved by merging its branch",))
    proposal_commit = None
    for parent in merge.parents[1:]:
        proposal_commit = _first_adding(repo, proposal_id, parent.hexsha,
                                        first_parent=False)
        if proposal_commit is not None:
            break
    problems = list(operator_commit_problems(root, brought))
    if proposal_commit is None:
        problems.append(f"merge {brought[:12]} does not bring the proposal's branch in")
    return Approval(proposal_id, merge=brought, approved_by=person(merge.author),
                    proposal_commit=proposal_commit,
                    signed=not problems and signatures_required(policy_before(repo,
                                                                              brought)[0]),
                    problems=tuple(problems))


def approval_records(history: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Proposal id -> its first approval record (a later one never counts)."""
    out: dict[str, dict[str, Any]] = {}
    for record in typed(history, "approval"):
        proposal = record.evidence.get("proposal")
        if isinstance(proposal, str):
            out.setdefault(proposal, dict(record.raw))
    return out


def _named_merge_problems(root: Path, sha: str) -> list[str]:
    """What is wrong with the commit an approval names, on its face."""
    try:
        # GitPython may resolve the id lazily (the null id does): read the parents here.
        parents = open_repo(root).commit(sha).parents
    except (ValueError, git.BadName):
        return [f"approval commit {sha} does not exist"]
    if len(parents) < 2:
        return [f"commit {sha[:12]} is not a merge: a proposal is approved by merging its "
                "branch"]
    return []


def record_problems(root: Path, record: Mapping[str, Any], at: str) -> list[str]:
    """Why the approval record is not backed by Git at ``at`` (empty: it is).

    The record must name the proposal, and repeat Git's answer: the approving merge, its
    author and the proposal commit.
    """
    evidence = Record(record).evidence
    proposal, merge = evidence.get("proposal"), evidence.get("commit")
    if not isinstance(proposal, str) or not isinstance(merge, str):
        return ["an approval names the proposal (evidence.proposal) and the merge commit "
                "that approved it (evidence.commit)"]
    answer = approval_of(root, proposal, at)
    if not answer.approved:
        return [*_named_merge_problems(root, merge),
                *(f"Git does not back this approval: {p}" for p in answer.problems)]
    problems = []
    if merge != answer.merge:
        problems.append(f"names merge {merge[:12]}, but proposal {proposal} was brought into "
                        f"the main line by {str(answer.merge)[:12]}")
    if evidence.get("approved_by") != answer.approved_by:
        problems.append(f"approved_by {evidence.get('approved_by')!r} is not the merge's "
                        f"author {answer.approved_by!r}")
    if evidence.get("proposal_commit") != answer.proposal_commit:
        problems.append(f"proposal_commit {evidence.get('proposal_commit')!r} is not the "
                        f"commit that added the proposal ({answer.proposal_commit})")
    return problems
