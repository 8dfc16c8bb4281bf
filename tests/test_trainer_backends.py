"""LoRA training backends on the tiny offline model.

Each backend trains in its own subprocess (``import unsloth`` patches TRL process-wide). The
training tests need the train extras and are marked ``train``; the spec, hashing and
import-hygiene tests run everywhere.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import asdict
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest

from convergent.adapter_hash import adapter_sha256, canonical_adapter_config, dir_sha256
from convergent.trainer.spec import SpecError, TrainSpec

HAS_TRAIN_EXTRAS = all(find_spec(name) for name in ("torch", "transformers", "peft", "trl"))
needs_train = pytest.mark.skipif(not HAS_TRAIN_EXTRAS, reason="train extras not installed")
needs_unsloth = pytest.mark.skipif(find_spec("unsloth") is None, reason="unsloth not installed")
TRAIN_TIMEOUT_S = 300
MAX_STEPS = 4
PROBE = "def add_total(total, count):\n    return"


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("trainer")


@pytest.fixture(scope="module")
def tiny_model(workdir: Path) -> Path:
    from convergent.trainer.tiny_model import build_tiny_model

    return build_tiny_model(workdir / "tiny-model", seed=0)


@pytest.fixture(scope="module")
def dataset(workdir: Path) -> Path:
    """Functions from the tiny model's corpus, split after the signature.

    The prompt ends on a token boundary (``):``), so the tokenized prompt is a prefix of the
    tokenized prompt + completion, as TRL wants.
    """
    from convergent.trainer.tiny_model import default_corpus

    functions = [text for text in default_corpus() if text.startswith("def ")][::97][:32]
    rows = [dict(zip(("prompt", "completion"), text.split("\n", 1), strict=True))
            for text in functions]
    for row in rows:
        row["completion"] = "\n" + row["completion"]
    path = workdir / "train.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def base_spec(tiny_model: Path, dataset: Path, workdir: Path) -> TrainSpec:
    # A high learning rate so a handful of steps visibly moves the outputs.
    return TrainSpec(base_model=str(tiny_model), dataset=str(dataset),
                     output_dir=str(workdir / "unused"), backend="peft", seed=7, lora_r=4,
                     lora_alpha=8, max_steps=MAX_STEPS, learning_rate=5e-3, batch_size=4,
                     max_seq_len=96)


def _train(spec: TrainSpec) -> dict[str, Any]:
    from convergent.trainer.train import run_training

    return run_training(spec, timeout_s=TRAIN_TIMEOUT_S)


@pytest.fixture(scope="module")
def peft_run(base_spec: TrainSpec, workdir: Path) -> tuple[Path, dict[str, Any]]:
    out = workdir / "run-peft"
    return out, _train(base_spec.replace(output_dir=str(out), backend="peft"))


@pytest.fixture(scope="module")
def unsloth_run(base_spec: TrainSpec, workdir: Path) -> tuple[Path, dict[str, Any]]:
    out = workdir / "run-unsloth"
    return out, _train(base_spec.replace(output_dir=str(out), backend="unsloth"))


def _start_training(spec: TrainSpec, spec_path: Path) -> subprocess.Popen[str]:
    spec_path.write_text(spec.to_json(), encoding="utf-8")
    return subprocess.Popen([sys.executable, "-m", "convergent.trainer.train", "--spec",
                             str(spec_path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def _kill_after_first_step(process: subprocess.Popen[str]) -> bool:
    """SIGKILL ``process`` once it reports a finished step; whether it got that far."""
    watchdog = threading.Timer(TRAIN_TIMEOUT_S, process.kill)
    watchdog.start()
    try:
        assert process.stderr is not None
        reached = any("] step 1/" in line for line in process.stderr)
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        watchdog.cancel()
    return reached


@pytest.fixture(scope="module")
def killed_then_rerun(base_spec: TrainSpec, workdir: Path) -> dict[str, Any]:
    """Kill a long PEFT run mid-training, then rerun the base spec into the same directory."""
    out = workdir / "run-peft-again"
    long_spec = base_spec.replace(output_dir=str(out), max_steps=100_000)
    reached_a_step = _kill_after_first_step(_start_training(long_spec, workdir / "long.json"))
    seen = {"reached_a_step": reached_a_step, "out_after_kill": out.exists(),
            "partial_after_kill": out.with_name(out.name + ".partial").exists()}
    report = _train(base_spec.replace(output_dir=str(out)))
    return {**seen, "out": out, "report": report}


def _logits(model: Any, tokenizer: Any) -> Any:
    import torch

    with torch.inference_mode():
        return model(**tokenizer(PROBE, return_tensors="pt")).logits


# --- training ------------------------------------------------------------------------------


@pytest.mark.train
@needs_train
@pytest.mark.parametrize("backend", ["peft", pytest.param("unsloth", marks=needs_unsloth)])
def test_backend_trains_a_lora_that_changes_outputs_and_keeps_the_base(
    request: pytest.FixtureRequest, backend: str, tiny_model: Path
) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from convergent.trainer.hashing import base_weights_sha256

    out, report = request.getfixturevalue(f"{backend}_run")
    assert report["backend"] == backend
    assert report["steps"] == MAX_STEPS
    assert report["base_sha256_after"] == report["base_sha256_before"]
    assert report["tokens_per_s"] > 0 and report["peak_memory_bytes"] > 0
    assert json.loads((out / "resolved_config.json").read_text())["backend"] == backend
    assert adapter_sha256(out / "adapter") == report["adapter_sha256"]

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    # The hash the run recorded is the hash of the checkpoint on disk: nothing was rewritten.
    assert base_weights_sha256(base) == report["base_sha256_before"]
    tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model),
                                      str(out / "adapter"))
    assert base_weights_sha256(tuned) == report["base_sha256_before"]
    difference = (_logits(tuned, tokenizer) - _logits(base, tokenizer)).abs().max().item()
    assert difference > 1e-3


@pytest.mark.train
@needs_train
def test_killed_training_leaves_no_adapter_dir_and_a_rerun_succeeds(
    killed_then_rerun: dict[str, Any],
) -> None:
    assert killed_then_rerun["reached_a_step"], "training was killed before its first step"
    assert not killed_then_rerun["out_after_kill"]
    assert killed_then_rerun["partial_after_kill"]
    out = killed_then_rerun["out"]
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert not out.with_name(out.name + ".partial").exists()


@pytest.mark.train
@needs_train
def test_identical_peft_runs_give_the_same_adapter_sha256(
    peft_run: tuple[Path, dict[str, Any]], killed_then_rerun: dict[str, Any]
) -> None:
    first_out, first = peft_run
    second = killed_then_rerun["report"]
    assert second["adapter_sha256"] == first["adapter_sha256"]
    assert second["losses"] == first["losses"]
    safetensors = "adapter/adapter_model.safetensors"
    assert (first_out / safetensors).read_bytes() == (
        killed_then_rerun["out"] / safetensors).read_bytes()


@pytest.mark.train
@needs_train
def test_generate_with_adapter_returns_k_samples_per_prompt(
    peft_run: tuple[Path, dict[str, Any]], tiny_model: Path
) -> None:
    from convergent.trainer.generate import generate

    out, _ = peft_run
    prompts = [PROBE, "def mul_count(count, items):"]
    completions = generate(tiny_model, out, prompts, max_new_tokens=6, samples=2, seed=1,
                           timeout_s=TRAIN_TIMEOUT_S)
    assert [len(samples) for samples in completions] == [2, 2]
    assert all(isinstance(text, str) for samples in completions for text in samples)


@pytest.mark.train
@needs_train
def test_training_output_dir_is_never_overwritten(
    peft_run: tuple[Path, dict[str, Any]], base_spec: TrainSpec
) -> None:
    from convergent.trainer.train import train_in_process

    out, _ = peft_run
    with pytest.raises(SpecError) as refused:
        train_in_process(base_spec.replace(output_dir=str(out), backend="peft"))
    assert refused.value.field == "output_dir"


@pytest.mark.train
@needs_train
def test_detect_backend_honours_force_and_keeps_unsloth_out_of_this_process() -> None:
    from convergent.trainer.train import cuda_available, detect_backend

    assert detect_backend("peft") == "peft"
    assert detect_backend("unsloth") == "unsloth"
    expected = "unsloth" if cuda_available() and find_spec("unsloth") else "peft"
    assert detect_backend(None) == detect_backend("auto") == expected
    assert "unsloth" not in sys.modules


# --- spec, hashing, imports (no train extras needed) -----------------------------------------


@pytest.fixture
def spec_inputs(tmp_path: Path) -> dict[str, Any]:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    data = tmp_path / "data.jsonl"
    data.write_text('{"prompt": "def f():", "completion": "\\n    return 1"}\n')
    return {"base_model": str(model), "dataset": str(data), "output_dir": str(tmp_path / "o")}


@pytest.mark.parametrize(("field", "value"), [
    ("lora_r", 0),
    ("lora_alpha", 1.5),
    ("lora_dropout", 1.0),
    ("learning_rate", float("nan")),
    ("max_steps", True),
    ("batch_size", -1),
    ("max_seq_len", "512"),
    ("seed", -1),
    ("backend", "tensorflow"),
    ("precision", "fp8"),
    ("target_modules", []),
    ("target_modules", ["q_proj", "q_proj"]),
    ("base_model", "/nonexistent/model/dir"),
    ("dataset", "/nonexistent.jsonl"),
    ("output_dir", ""),
    ("no_such_field", 1),
])
def test_a_bad_spec_field_is_refused_by_name(
    spec_inputs: dict[str, Any], field: str, value: Any
) -> None:
    with pytest.raises(SpecError) as refused:
        TrainSpec.from_dict({**spec_inputs, field: value})
    assert refused.value.field == field


def test_a_bad_dataset_line_is_refused_with_its_line_number(
    spec_inputs: dict[str, Any], tmp_path: Path
) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text('{"prompt": "a", "completion": "b"}\n{"prompt": "a"}\n')
    with pytest.raises(SpecError, match=r"bad\.jsonl:2: completion") as refused:
        TrainSpec.from_dict({**spec_inputs, "dataset": str(data)})
    assert refused.value.field == "dataset"


def test_spec_round_trips_through_json(spec_inputs: dict[str, Any]) -> None:
    spec = TrainSpec.from_dict({**spec_inputs, "target_modules": ["q_proj", "v_proj"]})
    assert TrainSpec.from_json(spec.to_json()) == spec
    assert asdict(spec)["target_modules"] == ("q_proj", "v_proj")


def test_train_cli_refuses_a_bad_spec_naming_the_field(
    spec_inputs: dict[str, Any], tmp_path: Path
) -> None:
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps({**spec_inputs, "lora_r": 0}))
    result = subprocess.run([sys.executable, "-m", "convergent.trainer.train", "--spec",
                             str(spec_path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "lora_r:" in result.stderr
    assert not Path(spec_inputs["output_dir"]).exists()


def _fake_adapter(root: Path, target_modules: list[str], indent: int | None) -> Path:
    root.mkdir()
    config = {"r": 8, "target_modules": target_modules, "peft_type": "LORA"}
    (root / "adapter_config.json").write_text(json.dumps(config, indent=indent))
    (root / "adapter_model.safetensors").write_bytes(b"\x00weights\x01")
    return root


def test_adapter_sha256_ignores_target_module_order_and_json_layout(tmp_path: Path) -> None:
    first = _fake_adapter(tmp_path / "a", ["q_proj", "v_proj", "k_proj"], indent=2)
    second = _fake_adapter(tmp_path / "b", ["k_proj", "q_proj", "v_proj"], indent=None)
    assert adapter_sha256(first) == adapter_sha256(second)
    assert dir_sha256(first) != dir_sha256(second)  # the raw bytes do differ
    (second / "adapter_model.safetensors").write_bytes(b"\x00weights\x02")
    assert adapter_sha256(first) != adapter_sha256(second)


def test_adapter_sha256_covers_file_names(tmp_path: Path) -> None:
    first = _fake_adapter(tmp_path / "a", ["q_proj"], indent=2)
    second = _fake_adapter(tmp_path / "b", ["q_proj"], indent=2)
    os.rename(second / "adapter_model.safetensors", second / "adapter_model.bin")
    assert adapter_sha256(first) != adapter_sha256(second)


def test_canonical_adapter_config_sorts_keys_and_string_lists() -> None:
    raw = b'{"target_modules": ["v", "q"], "r": 8, "layers": [3, 1]}'
    assert canonical_adapter_config(raw) == b'{"layers":[3,1],"r":8,"target_modules":["q","v"]}'


def test_importing_the_trainer_does_not_import_torch_or_unsloth() -> None:
    modules = ["convergent.trainer." + name for name in (
        "train", "generate", "hashing", "spec", "tiny_model", "backends",
        "backends.peft_backend", "backends.unsloth_backend")]
    probe = ("import sys\n" + "".join(f"import {m}\n" for m in modules)
             + "heavy = {'torch', 'transformers', 'trl', 'peft', 'unsloth'} & set(sys.modules)\n"
             + "sys.exit(f'imported {sorted(heavy)}' if heavy else 0)\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
