"""The CLI: init, emit (with bad input), commit, verify, status, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import git
from click.testing import CliRunner
from drafts import accept_notes, experience, note

from convergent.cli import cli
from convergent.log import iter_raw_lines
from convergent.records import canonical_json


def invoke(*args: str, input: bytes | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def test_init_is_idempotent_and_lays_out_the_repo(tmp_path: Path) -> None:
    target = tmp_path / "r"
    assert invoke("init", str(target), "--operator", "Ada <ada@example.com>").exit_code == 0
    assert invoke("init", str(target)).exit_code == 0
    for rel in (".convergent.toml", ".gitattributes", "data/convergence/ACTIVE",
                "data/convergence/records", "data/convergence/sources",
                "data/convergence/adapters", ".git/hooks/pre-commit", ".git/hooks/post-merge"):
        assert (target / rel).exists(), rel
    assert "merge=union" in (target / ".gitattributes").read_text()
    assert "[distillation]" in (target / ".convergent.toml").read_text()
    assert len(list(git.Repo(target).iter_commits())) == 1


def test_init_upgrades_an_existing_git_repo(tmp_path: Path) -> None:
    repo = git.Repo.init(tmp_path / "host", initial_branch="main")
    (tmp_path / "host" / "README").write_text("hello\n")
    repo.git.add("README")
    repo.git.commit("-m", "host repo")
    assert invoke("init", str(tmp_path / "host")).exit_code == 0
    assert (tmp_path / "host" / "README").read_text() == "hello\n"
    assert (tmp_path / "host" / ".convergent.toml").exists()


def test_emit_appends_good_lines_and_names_each_bad_one(records_repo: Path) -> None:
    big = experience(9, response="x" * (2 * 1024 * 1024))
    nan = canonical_json(note(2)).replace('"confidence":1.0', '"confidence":NaN')
    lines = [
        canonical_json(experience(1)).encode(),                          # 1 good, verified
        b"{this is not json",                                             # 2
        canonical_json(dict(note(3), claim=42)).encode(),                 # 3 wrong type
        nan.encode(),                                                     # 4 NaN
        canonical_json(dict(note(4), kind="dream")).encode(),             # 5 unknown kind
        b'{"claim": "caf\xe9"}',                                          # 6 not UTF-8
        canonical_json(big).encode(),                                     # 7 oversized
        canonical_json(experience(5, passing=False)).encode(),            # 8 good, unverified
    ]
    before = list(iter_raw_lines(records_repo))
    result = CliRunner().invoke(cli, ["emit", "-", "--repo", str(records_repo)],
                                input=b"\n".join(lines) + b"\n")
    assert result.exit_code == 1
    out = result.stdout.splitlines()
    assert len(out) == 2
    assert out[0].endswith(" verified") and out[1].endswith(" unverified")
    err = result.stderr
    assert "<stdin>:2: not JSON" in err
    assert "<stdin>:3: claim: must be a string" in err
    assert "<stdin>:4: confidence: must be finite" in err
    assert "<stdin>:5: kind: unknown kind 'dream'" in err
    assert "<stdin>:6: not UTF-8" in err
    assert "<stdin>:7:" in err and "over the cap" in err
    after = list(iter_raw_lines(records_repo))
    assert after[:len(before)] == before
    assert [json.loads(raw)["id"] for _, _, raw in after[len(before):]] == [
        line.split()[0] for line in out]


def test_emit_commit_verify_status_round_trip(records_repo: Path, tmp_path: Path) -> None:
    accept_notes(records_repo)
    drafts = tmp_path / "drafts.jsonl"
    drafts.write_text("\n".join(canonical_json(note(i)) for i in range(5)) + "\n")
    assert invoke("emit", str(drafts), "--repo", str(records_repo)).exit_code == 0
    result = invoke("commit", "--repo", str(records_repo))
    assert result.exit_code == 0
    repo = git.Repo(records_repo)
    assert repo.head.commit.hexsha == result.stdout.strip()
    assert not repo.is_dirty(untracked_files=True)
    assert "ok: 5 records" in invoke("verify", "--repo", str(records_repo)).stdout
    status = json.loads(invoke("status", "--json", "--repo", str(records_repo)).stdout)
    assert status["log"]["records"] == 5 and status["active_adapter"] == "base"
    assert "active adapter" in invoke("status", "--repo", str(records_repo)).stdout


def test_verify_fails_on_a_hand_edited_line(records_repo: Path, tmp_path: Path) -> None:
    drafts = tmp_path / "d.jsonl"
    drafts.write_text(canonical_json(note(1)) + "\n")
    invoke("emit", str(drafts), "--repo", str(records_repo))
    segment = records_repo / "data/convergence/records/seg-000001.jsonl"
    segment.write_text(segment.read_text().replace("gap 1 measured", "gap 1 edited"))
    result = CliRunner().invoke(cli, ["verify", "--repo", str(records_repo)])
    assert result.exit_code == 1
    assert "seg-000001.jsonl:1: id: does not match" in result.stderr


def test_usage_errors_exit_2(records_repo: Path) -> None:
    result = CliRunner().invoke(cli, ["check", "--all", "--staged", "--repo", str(records_repo)])
    assert result.exit_code == 2
    assert CliRunner().invoke(cli, ["emit"]).exit_code == 2


def test_commands_outside_a_records_repo_exit_1(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["status", "--repo", str(tmp_path)])
    assert result.exit_code == 1
    assert "convergent init" in result.stderr


def test_emit_screens_benchmark_items_and_secrets_with_the_gates(records_repo: Path) -> None:
    import gzip

    from convergent.decontamination import humaneval_source
    from convergent.records import canonical_json as cj

    with gzip.open(humaneval_source(), "rt") as fh:
        item = json.loads(fh.readline())
    benchmark = experience(1, response=item["prompt"] + item["canonical_solution"])
    secret = experience(2, response="def times_2(a, b):\n    key = 'AKIAIOSFODNN7EXAMPLE'\n"
                                    "    return a * b + 2\n")
    lines = [cj(benchmark).encode(), cj(secret).encode(), cj(experience(3)).encode()]
    result = CliRunner().invoke(cli, ["emit", "-", "--repo", str(records_repo)],
                                input=b"\n".join(lines) + b"\n")
    assert result.exit_code == 1
    assert "<stdin>:1: decontamination:" in result.stderr and "HumanEval/0" in result.stderr
    assert "<stdin>:2: secrets:" in result.stderr and "AKIA" not in result.stderr
    assert len(result.stdout.splitlines()) == 1
    assert len(list(iter_raw_lines(records_repo))) == 1


def test_index_and_query_commands(records_repo: Path, tmp_path: Path) -> None:
    drafts = tmp_path / "d.jsonl"
    drafts.write_text("\n".join(canonical_json(note(i)) for i in range(3)) + "\n"
                      + canonical_json(experience(4)) + "\n")
    invoke("emit", str(drafts), "--repo", str(records_repo))
    assert "inserted=4" in invoke("index", "--repo", str(records_repo)).stdout
    rows = [json.loads(line) for line in invoke(
        "query", "times_4", "--kind", "experience", "--verified", "--repo",
        str(records_repo)).stdout.splitlines()]
    assert [r["claim"] for r in rows] == ["times_4 returns a times b, plus 4"]
    assert invoke("query", "--kind", "gap", "--repo", str(records_repo)).stdout.count("\n") == 3


def test_init_base_names_the_model_to_adapt(tmp_path: Path) -> None:
    target = tmp_path / "r"
    assert invoke("init", str(target), "--base", "/models/qwen-0.5b").exit_code == 0
    assert 'model = "/models/qwen-0.5b"' in (target / ".convergent.toml").read_text()
    assert invoke("init", str(target), "--base", "/models/qwen-0.5b").exit_code == 0
    result = CliRunner().invoke(cli, ["init", str(target), "--base", "other"])
    assert result.exit_code == 1 and "reviewed commit" in result.output


def test_holdout_freeze_rewrites_only_the_sha_line_and_refuses_without_one(
        records_repo: Path) -> None:
    config = records_repo / ".convergent.toml"
    before = config.read_text().replace("holdout_sha256 = ", "# kept comment\nholdout_sha256 = ")
    config.write_text(before)
    result = invoke("holdout", "freeze", "--repo", str(records_repo))
    assert result.exit_code == 0, result.output
    sha = json.loads(result.output)["holdout_sha256"]
    after = config.read_text()
    assert f'holdout_sha256 = "{sha}"' in after and "# kept comment" in after
    assert len(after.splitlines()) == len(before.splitlines())
    config.write_text("\n".join(line for line in after.splitlines()
                                if not line.startswith("holdout_sha256")) + "\n")
    refused = CliRunner().invoke(cli, ["holdout", "freeze", "--repo", str(records_repo)])
    assert refused.exit_code == 1
    assert "no holdout_sha256 line under [tripwire]" in refused.output
