"""The embedded default base model: a ~0.5M-parameter Llama pretrained here, on a CPU.

A *model organism for the loop*, not a coder: it is pretrained for about a minute on the
synthetic task family of :mod:`convergent.organism_tasks`, so its numbers move the way a
real model's do. It passes part of its hold-out, is weak on the gap sub-family (which its
pretraining barely shows), gains from sampling, learns from a LoRA cycle on verified gap
experiences and collapses when trained on constant answers.

Build it (idempotent: a complete build with the same recipe is reused)::

    python -m convergent.trainer.organism [OUT_DIR]

Without ``OUT_DIR`` it builds into the user cache, ``$XDG_CACHE_HOME/convergent/
organism-<recipe hash>/`` (``~/.cache`` by default), and prints the path. The build is
seeded and runs on one thread (``torch.set_num_threads(1)``), so it is bit-reproducible on
a CPU: the stamp ``organism.json`` records the sha256 of the weights. Parent processes call
:func:`ensure_organism`, which builds in a subprocess (torch stays out of the caller).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from convergent.child_process import run_module
from convergent.errors import ConvergentError
from convergent.layout import user_cache_dir
from convergent.organism_tasks import SEED, pretraining_texts
from convergent.trainer import stamped_build
from convergent.trainer.stamped_build import build_once, holds

MODULE = "convergent.trainer.organism"
STAMP_FILE = "organism.json"
RECIPE_VERSION = 1
EOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|pad|>"

# Everything the weights are a function of. Its sha256 names the cache directory.
RECIPE: dict[str, Any] = {
    "version": RECIPE_VERSION,
    "seed": SEED,
    "vocab_size": 384,
    "model": {
        "hidden_size": 96,
        "intermediate_size": 256,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 128,
        "tie_word_embeddings": False,
    },
    "train": {"steps": 150, "batch_size": 32, "learning_rate": 3e-3, "warmup_steps": 20,
              "weight_decay": 0.0, "threads": 1},
}


class OrganismError(ConvergentError):
    """The organism could not be built (or its cache holds something else)."""


def recipe_sha256(recipe: dict[str, Any] | None = None) -> str:
    """The content hash of the recipe and of the pretraining corpus it trains on."""
    recipe = RECIPE if recipe is None else recipe
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode("utf-8"))
    for text in pretraining_texts(int(recipe["seed"])):
        digest.update(text.encode("utf-8") + b"\0")
    return digest.hexdigest()


def default_dir() -> Path:
    """Where the organism lives in the user cache (honours ``XDG_CACHE_HOME``)."""
    return user_cache_dir() / f"organism-{recipe_sha256()[:16]}"


def read_stamp(out_dir: Path) -> dict[str, Any] | None:
    return stamped_build.read_stamp(out_dir, STAMP_FILE)


def is_built(out_dir: Path) -> bool:
    return holds(out_dir, STAMP_FILE, {"recipe_sha256": recipe_sha256()})


def _train_tokenizer(texts: Sequence[str], vocab_size: int) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    # A newline is always a token of its own: a prompt ends with one, and the pretraining
    # text must break there the same way (else the model never saw the prompt's last token
    # followed by a body).
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split("\n", behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False)])
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS_TOKEN, PAD_TOKEN],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    bpe.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token=EOS_TOKEN,
                                   eos_token=EOS_TOKEN, pad_token=PAD_TOKEN,
                                   model_max_length=RECIPE["model"]["max_position_embeddings"])


def _weights_sha256(model: Any) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode("utf-8") + b"\0")
        digest.update(tensor.detach().contiguous().numpy().tobytes())
    return digest.hexdigest()


def pretrain(recipe: dict[str, Any], say: Any = None) -> tuple[Any, Any, dict[str, Any]]:
    """Train tokenizer and model from scratch on the family; return (model, tokenizer, facts)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    train = recipe["train"]
    torch.set_num_threads(int(train["threads"]))
    torch.use_deterministic_algorithms(True)
    texts = list(pretraining_texts(int(recipe["seed"])))
    tokenizer = _train_tokenizer(texts, int(recipe["vocab_size"]))
    eos = tokenizer.eos_token_id
    docs = [ids + [eos] for ids in tokenizer(texts)["input_ids"]]  # one batched call
    config = LlamaConfig(vocab_size=len(tokenizer), bos_token_id=eos, eos_token_id=eos,
                         pad_token_id=tokenizer.pad_token_id, **recipe["model"])
    torch.manual_seed(int(recipe["seed"]))
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = eos
    optimizer = torch.optim.AdamW(model.parameters(), lr=float(train["learning_rate"]),
                                  weight_decay=float(train["weight_decay"]))
    steps, batch, warmup = int(train["steps"]), int(train["batch_size"]), int(train["warmup_steps"])
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, 1 - s / steps) if warmup
        else max(0.0, 1 - s / steps))
    generator = torch.Generator().manual_seed(int(recipe["seed"]))
    order = torch.randperm(len(docs), generator=generator).tolist()
    cursor, losses = 0, []
    model.train()
    started = time.perf_counter()
    for step in range(steps):
        if cursor + batch > len(order):
            order = torch.randperm(len(docs), generator=generator).tolist()
            cursor = 0
        chunk = [docs[i] for i in order[cursor:cursor + batch]]
        cursor += batch
        width = max(len(d) for d in chunk)
        ids = torch.full((len(chunk), width), tokenizer.pad_token_id, dtype=torch.long)
        labels = torch.full((len(chunk), width), -100, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, doc in enumerate(chunk):
            ids[row, :len(doc)] = torch.tensor(doc)
            labels[row, :len(doc)] = torch.tensor(doc)
            mask[row, :len(doc)] = 1
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if say is not None and (step + 1) % 50 == 0:
            say(f"organism: step {step + 1}/{steps} loss {sum(losses[-50:]) / 50:.4f}")
    model.eval()
    facts = {"pretrain_s": round(time.perf_counter() - started, 3), "documents": len(docs),
             "tokens_per_step": batch, "final_loss": round(sum(losses[-20:]) / 20, 6),
             "parameters": sum(p.numel() for p in model.parameters()),
             "vocab_size": len(tokenizer)}
    return model, tokenizer, facts


def build_organism(out_dir: Path | None = None, *, say: Any = None) -> Path:
    """Build (or reuse) the organism at ``out_dir`` (default: the user cache); return it."""
    out_dir = default_dir() if out_dir is None else Path(out_dir)
    wanted = recipe_sha256()
    started = time.perf_counter()

    def build(staging: Path) -> dict[str, Any]:
        model, tokenizer, facts = pretrain(RECIPE, say=say)
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        return {"recipe": RECIPE, "weights_sha256": _weights_sha256(model),
                "build_s": round(time.perf_counter() - started, 3), **facts}

    return build_once(out_dir, stamp_file=STAMP_FILE, wanted={"recipe_sha256": wanted},
                      build=build, refusal=lambda path: OrganismError(
                          f"{path}: exists and is not the organism of recipe {wanted[:16]}; "
                          "remove it or choose another directory"))


def ensure_organism(*, timeout_s: float = 900) -> Path:
    """The organism's directory in the user cache, built first (in a subprocess) if needed."""
    path = default_dir()
    if not is_built(path):
        run_module(MODULE, [str(path)], timeout_s=timeout_s,
                   what="building the organism base model", error=OrganismError)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, nargs="?", help="default: the user cache")
    args = parser.parse_args(argv)
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # the recipe is a CPU recipe

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        path = build_organism(args.out_dir, say=say)
    except (ConvergentError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
