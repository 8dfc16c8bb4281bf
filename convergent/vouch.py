"""Operator evidence bound to one record: the vouch digest, and how an operator vouches.

A record cannot hold the sha of the commit that adds its own line, so an operator
vouches for its *vouch digest* instead: the sha256 of the canonical draft without the
fields the plugin fills (``v``, ``id``, ``ts``, ``verdict``) and without the evidence's
own ``commit`` and ``signature``. Change one character of the claim, the task, the
response, the links or who approved it, and the digest changes.

An operator vouches for a digest in one of two ways (``convergent vouch`` does either):

- a **commit** authored by a configured operator (signed, when ``[operators]
  require_signed``) whose message carries the trailer ``Vouches: sha256:<digest>``, or
  (not for merges) whose diff adds a line holding the digest; the record's
  ``evidence.commit`` names it, and it must be in the history the record is committed on;
- an **SSH signature** over the digest, ``ssh-keygen -Y sign -n convergent-vouch``, in
  ``evidence.signature``, checked with ``ssh-keygen -Y verify`` against ``[operators]
  allowed_signers`` for the e-mail of ``approved_by``.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import git

from convergent.approval import is_operator
from convergent.config import Config, load_config
from convergent.errors import ConvergentError
from convergent.gitops import author_identity, commit_message, open_repo
from convergent.records import FILLED_FIELDS, canonical_json, validate_draft

TRAILER = "Vouches"
NAMESPACE = "convergent-vouch"
UNBOUND_EVIDENCE = ("commit", "signature")  # the evidence fields the digest leaves out
_EMAIL = re.compile(r"<([^<>\s]+)>\s*$")


def vouch_digest(draft: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` of what an operator vouches for (see the module doc)."""
    body = {k: v for k, v in draft.items() if k not in FILLED_FIELDS}
    body.setdefault("links", [])  # as finalize fills it: the draft and its record agree
    evidence = body.get("evidence")
    if isinstance(evidence, Mapping):
        body["evidence"] = {k: v for k, v in evidence.items() if k not in UNBOUND_EVIDENCE}
    return "sha256:" + hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def vouch_message(digests: list[str], claims: list[str]) -> str:
    """The message of an operator's vouching commit: what it vouches for, then trailers."""
    lines = [f"convergent: vouch for {len(digests)} record{'s' if len(digests) != 1 else ''}",
             ""]
    lines += [f"- {claim}" for claim in claims]
    lines += ["", *(f"{TRAILER}: {digest}" for digest in digests)]
    return "\n".join(lines) + "\n"


def commit_vouches(repo: git.Repo, commit: git.Commit, digest: str) -> bool:
    """Whether ``commit`` vouches for ``digest``: by its trailer, or (not a merge) by a line
    its diff adds. Who made the commit is the caller's to check."""
    if any(key == TRAILER and value.strip() == digest for key, value in commit.trailers_list):
        return True
    if len(commit.parents) > 1:  # a merge's diff is the merged branch's work, not its own
        return False
    diff = repo.git.show(commit.hexsha, "--format=", "--no-color", "--no-ext-diff",
                         "--no-renames", "-U0")
    hexdigest = digest.removeprefix("sha256:")
    return any(line.startswith("+") and not line.startswith("+++") and hexdigest in line
               for line in diff.splitlines())


def email_of(person: str) -> str | None:
    match = _EMAIL.search(person)
    return match.group(1) if match else None


def signature_problem(root: Path, config: Config, rev: str | None, approved_by: str,
                      digest: str, signature: str) -> str | None:
    """None when ``signature`` is ``approved_by``'s SSH signature over ``digest``, checked
    against the allowed signers that ``config`` names as committed at ``rev``."""
    from convergent.approval import allowed_signers_at

    principal = email_of(approved_by)
    if principal is None:
        return f"approved_by {approved_by!r} has no <email> to find its key by"
    with allowed_signers_at(root, config, rev) as (signers, missing):
        if signers is None:
            return str(missing)
        return _ssh_verify(signers, principal, digest, signature)


def _ssh_verify(signers: Path, principal: str, digest: str, signature: str) -> str | None:
    with tempfile.TemporaryDirectory(prefix="convergent-vouch-") as tmp:
        sig = Path(tmp) / "vouch.sig"
        sig.write_text(signature, "utf-8")
        done = subprocess.run(
            ["ssh-keygen", "-Y", "verify", "-f", str(signers), "-I", principal,
             "-n", NAMESPACE, "-s", str(sig)],
            input=digest.encode("ascii"), capture_output=True, timeout=30, check=False)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).decode("utf-8", "replace").strip()
        return f"the signature does not verify for {principal}: {detail or 'refused'}"
    return None


def sign_digest(digest: str, key: Path) -> str:
    """An SSH signature over ``digest`` with the private key ``key`` (armored text)."""
    with tempfile.TemporaryDirectory(prefix="convergent-vouch-") as tmp:
        message = Path(tmp) / "digest"
        message.write_bytes(digest.encode("ascii"))
        done = subprocess.run(["ssh-keygen", "-Y", "sign", "-f", str(key), "-n", NAMESPACE,
                               str(message)], capture_output=True, timeout=60, check=False)
        if done.returncode != 0:
            raise RuntimeError(done.stderr.decode("utf-8", "replace").strip())
        return (Path(tmp) / "digest.sig").read_text("utf-8")


# --- the operator's flow: ``convergent vouch`` ------------------------------------------------


class VouchError(ConvergentError):
    """The drafts cannot be vouched for as asked (who, what, or how)."""


def vouch_drafts(root: Path, drafts: list[dict[str, Any]], *, sign: bool | None = None,
                 ssh_key: Path | None = None) -> list[dict[str, Any]]:
    """Vouch for operator-evidence drafts as the current git user, a configured operator:
    one commit carrying a ``Vouches:`` trailer per draft (signed with ``sign``, required
    under ``require_signed``), or with ``ssh_key`` an SSH signature per draft and no
    commit. Returns the drafts with ``evidence.commit`` (or ``signature``) filled in."""
    config = load_config(root)
    repo = open_repo(root)
    me = author_identity(repo)
    if not is_operator(config, me):
        raise VouchError(f"{me} is not a configured operator ([operators] allowed in "
                         ".convergent.toml): only an operator vouches")
    out = []
    for i, draft in enumerate(drafts, 1):
        evidence = draft.get("evidence")
        if not isinstance(evidence, dict) or evidence.get("type") != "operator":
            raise VouchError(f"draft {i}: evidence.type must be 'operator'")
        if evidence.get("approved_by", me) != me:
            raise VouchError(f"draft {i}: approved_by is {evidence['approved_by']!r}, not you "
                             f"({me}): each operator vouches for themselves")
        bound = dict(draft, evidence={k: v for k, v in evidence.items()
                                      if k not in UNBOUND_EVIDENCE} | {"approved_by": me})
        validate_draft(dict(bound, evidence=dict(bound["evidence"], commit="0" * 40)))
        out.append(bound)
    digests = [vouch_digest(d) for d in out]
    if ssh_key is not None:
        for draft, digest in zip(out, digests, strict=True):
            draft["evidence"]["signature"] = sign_digest(digest, ssh_key)
        return out
    required = bool(config["operators"].get("require_signed"))
    sign = required if sign is None else sign
    if required and not sign:
        raise VouchError("[operators] require_signed = true: vouch with --sign (or --ssh-key)")
    sha = commit_message(root, vouch_message(digests, [d["claim"] for d in out]), sign=sign)
    for draft in out:
        draft["evidence"]["commit"] = sha
    return out
