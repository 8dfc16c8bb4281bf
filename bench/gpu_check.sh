#!/usr/bin/env bash
# GPU check: the same LoRA steps with the unsloth and the peft backends on a ~0.5B-parameter
# Llama-shaped model built from config (random weights, no downloads), each backend in its own
# process. Prints tokens/s and peak GPU memory of each, and their ratio (unsloth / peft).
#
#   bench/gpu_check.sh [WORKDIR]        (default: a fresh temp dir; STEPS=30 BATCH=8 SEQ=1024)
#
# For a GPU box only: never part of CI, and it refuses to run without a CUDA device.
set -euo pipefail

PY="${PYTHON:-python}"
WORK="${1:-$(mktemp -d -t convergent-gpu-check-XXXXXX)}"
STEPS="${STEPS:-30}"
BATCH="${BATCH:-8}"
SEQ="${SEQ:-1024}"
mkdir -p "$WORK"
# Everything is local: never wait on a hub that a GPU box may not reach.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "gpu_check: needs a CUDA GPU (torch.cuda.is_available() is false)" >&2
    exit 2
fi

echo "== building the model, the dataset and the specs in $WORK"
"$PY" - "$WORK" "$STEPS" "$BATCH" "$SEQ" <<'EOF'
import json
import sys
from pathlib import Path

import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from convergent.trainer.spec import TrainSpec
from convergent.trainer.tiny_model import build_tiny_model, default_corpus

work, steps, batch, seq = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
tiny = build_tiny_model(work / "tiny")  # only its tokenizer is used
model_dir = work / "llama-0.5b"
if not (model_dir / "config.json").is_file():
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    # Qwen2.5-0.5B-like budget in a Llama shape; the vocabulary rows past the tokenizer's
    # are never looked up but cost what a real 32k vocabulary costs in the LM head.
    config = LlamaConfig(vocab_size=32768, hidden_size=1024, intermediate_size=4096,
                         num_hidden_layers=26, num_attention_heads=16, num_key_value_heads=8,
                         max_position_embeddings=4096, tie_word_embeddings=False,
                         bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
with torch.device("meta"):  # count without allocating
    n = sum(p.numel() for p in LlamaForCausalLM(LlamaConfig.from_pretrained(model_dir)).parameters())
print(f"model: {n / 1e9:.3f}B parameters at {model_dir}")

# Long examples, so the step time is the model's, not the data loader's.
texts = list(default_corpus())
rows = []
for start in range(0, 64 * 24, 24):
    body = "".join(texts[start:start + 24])
    head, _, rest = body.partition("\n")
    rows.append({"prompt": head, "completion": "\n" + rest})
data = work / "train.jsonl"
data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")

for backend in ("unsloth", "peft"):
    spec = TrainSpec(base_model=str(model_dir), dataset=str(data),
                     output_dir=str(work / f"run-{backend}"), backend=backend, seed=0,
                     lora_r=16, lora_alpha=16, max_steps=steps, learning_rate=2e-4,
                     batch_size=batch, max_seq_len=seq, precision="bf16")
    (work / f"spec-{backend}.json").write_text(spec.to_json(), encoding="utf-8")
EOF

for backend in unsloth peft; do
    rm -rf "$WORK/run-$backend" "$WORK/run-$backend.partial"
    echo "== training with $backend (own process)"
    "$PY" -m convergent.trainer.train --spec "$WORK/spec-$backend.json"
done

echo "== results"
"$PY" - "$WORK" <<'EOF'
import json
import sys
from pathlib import Path

work = Path(sys.argv[1])
reports = {b: json.loads((work / f"run-{b}" / "train_report.json").read_text())
           for b in ("unsloth", "peft")}
gib = 1 << 30
for backend, r in reports.items():
    print(f"{backend:8s} tokens/s {r['tokens_per_s']:10.1f}   peak memory "
          f"{r['peak_memory_bytes'] / gib:6.2f} GiB ({r['peak_memory_kind']})   "
          f"train {r['train_s']:6.1f}s   final loss {r['loss']:.4f}   "
          f"base unchanged {r['base_sha256_before'] == r['base_sha256_after']}")
u, p = reports["unsloth"], reports["peft"]
print(f"ratio unsloth/peft: tokens/s x{u['tokens_per_s'] / p['tokens_per_s']:.2f}   "
      f"peak memory x{u['peak_memory_bytes'] / p['peak_memory_bytes']:.2f}")
print("versions:", json.dumps(u["versions"], sort_keys=True))
EOF
