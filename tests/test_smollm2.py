"""The real-model path, small: SmolLM2-135M-Instruct converted from its GGUF wheel, prompted
through its chat template, LoRA-trained for two steps, reloaded with the adapter, and scored by
the tripwire in the sandbox. Slow on a CPU (a few minutes), so it is one test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from convergent.completions import fenced_blocks
from convergent.config import load_config
from convergent.repo import init_repo

# One-line tasks in the hold-out's format (original, not benchmark items).
TASKS = [
    {"task_id": "smol/double", "entry_point": "double",
     "prompt": 'def double(x):\n    """Return x multiplied by 2."""\n',
     "test": "def check(f):\n    assert f(2) == 4\n    assert f(-3) == -6\n    assert f(0) == 0\n"},
    {"task_id": "smol/is_even", "entry_point": "is_even",
     "prompt": 'def is_even(n):\n    """Return True when the integer n is even."""\n',
     "test": "def check(f):\n    assert f(4) is True\n    assert f(7) is False\n"},
    {"task_id": "smol/last", "entry_point": "last",
     "prompt": 'def last(items):\n    """Return the last element of the list items."""\n',
     "test": "def check(f):\n    assert f([1, 2, 3]) == 3\n    assert f(['a']) == 'a'\n"},
]


@pytest.fixture(scope="module")
def smollm2_dir() -> Path:
    pytest.importorskip("torch")
    from convergent.trainer.bases import resolve_base_model

    return Path(resolve_base_model({"base": {"model": "smollm2-135m"}}))


def test_conversion_is_a_plain_checkpoint_with_the_chat_end_token(smollm2_dir: Path) -> None:
    from convergent.trainer.smollm2 import END_TOKEN, is_converted

    assert is_converted(smollm2_dir)
    tokenizer_config = json.loads((smollm2_dir / "tokenizer_config.json").read_text("utf-8"))
    assert tokenizer_config["eos_token"] == END_TOKEN
    assert tokenizer_config["pad_token"] == END_TOKEN
    assert (smollm2_dir / "model.safetensors").stat().st_size > 400_000_000  # fp32, dequantized


def test_generate_train_reload_and_tripwire(smollm2_dir: Path, tmp_path: Path) -> None:
    from convergent.trainer.spec import TrainSpec
    from convergent.trainer.train import run_training
    from convergent.trainer.tripwire import evaluate

    root = init_repo(tmp_path / "records", operators=["Ada Operator <ada@example.com>"])
    config = load_config(root)
    config["tripwire"]["max_new_tokens"] = 96
    config["tripwire"]["embeddings"] = False
    base_score = evaluate(root, config, str(smollm2_dir), None, "base", TASKS)
    assert base_score.total == 3
    assert base_score.passed >= 1, base_score  # measured 22/30 on one-line tasks like these
    # Prompted through the chat template, the instruct model answers with fenced code.
    answers = base_score.details["sample"]
    assert len(answers) == 3 and all(fenced_blocks(answer) for answer in answers), answers

    dataset = tmp_path / "pairs.jsonl"
    dataset.write_text("".join(json.dumps({"prompt": t["prompt"], "completion": body}) + "\n"
                               for t, body in zip(TASKS, ["    return x * 2\n",
                                                          "    return n % 2 == 0\n",
                                                          "    return items[-1]\n"],
                                                  strict=True)), "utf-8")
    spec = TrainSpec(base_model=str(smollm2_dir), dataset=str(dataset),
                     output_dir=str(tmp_path / "run"), backend="peft", max_steps=2,
                     batch_size=2, max_seq_len=256)
    report = run_training(spec, timeout_s=1200)
    assert report["steps"] == 2
    assert report["base_sha256_before"] == report["base_sha256_after"]
    assert all(loss > 0 for loss in report["losses"])

    adapter_score = evaluate(root, config, str(smollm2_dir), tmp_path / "run", "adapter", TASKS)
    assert adapter_score.total == 3
    assert adapter_score.model == "adapter"
    assert 0 <= adapter_score.passed <= 3
