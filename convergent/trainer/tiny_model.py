"""A tiny offline Llama-shaped base model for tests and the demo (no downloads).

Build one (idempotent: an existing complete build with the same seed and corpus is reused)::

    python -m convergent.trainer.tiny_model OUT_DIR [--seed 0]

The result loads with ``AutoModelForCausalLM.from_pretrained(OUT_DIR)`` and
``AutoTokenizer.from_pretrained(OUT_DIR)``. Weights are random (seeded); the tokenizer is a
byte-level BPE trained on a built-in corpus of Python-ish text, so the model can be fine-tuned
on code-like records in seconds on a CPU.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from itertools import product
from pathlib import Path
from typing import Any

from convergent.trainer.stamped_build import build_once

# Written last: its presence (with matching inputs) is what makes a build "complete".
STAMP_FILE = "tiny_model.json"
STAMP_VERSION = 2

EOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|pad|>"
VOCAB_SIZE = 1024

# Small on purpose: ~0.2M parameters, a training step takes milliseconds on a CPU.
MODEL_SHAPE: dict[str, Any] = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 512,
    "tie_word_embeddings": False,
}

_NAMES = (
    "total", "count", "items", "value", "result", "text", "name", "index", "data", "key",
    "path", "line", "word", "number", "size", "offset", "width", "height", "score", "price",
    "user", "record", "buffer", "token", "message", "config", "node", "parent", "child", "depth",
    "left", "right", "start", "stop", "step", "limit", "queue", "stack", "cache", "graph",
    "matrix", "vector", "row", "column", "label", "weight", "prefix", "suffix", "pattern", "query",
)
_OPS = (("add", "+"), ("sub", "-"), ("mul", "*"), ("div", "/"), ("mod", "%"), ("pow", "**"))
_TEMPLATES = (
    'def {op}_{a}({a}, {b}):\n    """Return {a} {sym} {b}."""\n    return {a} {sym} {b}\n',
    "def {op}_all({a}s):\n    {b} = 0\n    for {a} in {a}s:\n        {b} = {b} {sym} {a}\n"
    "    return {b}\n",
    "def is_{a}_{op}({a}, {b}=None):\n    if {b} is None:\n        return False\n"
    "    return ({a} {sym} {b}) > 0\n",
    "class {A}{B}:\n    def __init__(self, {a}):\n        self.{a} = {a}\n\n"
    "    def {op}(self, {b}):\n        return self.{a} {sym} {b}\n",
    "assert {op}_{a}(2, 3) == 2 {sym} 3\nprint(f\"{{{a}!r}} and {{{b}}}\")\n",
    "def sorted_{a}s({a}s, {b}):\n    return sorted({a}s, key=lambda x: x {sym} {b})\n",
    "def read_{a}(path):\n    with open(path, encoding=\"utf-8\") as f:\n"
    "        return [{b}.strip() for {b} in f if {b}]\n",
    "def check_{a}({a}):\n    if not isinstance({a}, int):\n"
    "        raise ValueError(\"{a} must be an int\")\n    return {a}\n",
    "def find_{b}({a}s, {b}):\n    for i, {a} in enumerate({a}s):\n"
    "        if {a} == {b}:\n            return i\n    return -1\n",
    "def {op}_pairs({a}s, {b}s):\n    return {{k: v {sym} 1 for k, v in zip({a}s, {b}s)}}\n",
    "try:\n    {a} = int({b})\nexcept (TypeError, ValueError):\n    {a} = None\n",
    "def iter_{a}s({a}s):\n    for {b} in range(len({a}s)):\n        yield {a}s[{b}]\n",
)


def default_corpus() -> Iterator[str]:
    """Deterministic Python-ish snippets: every template over name pairs and operators."""
    # Each name meets a few neighbours, not all of them: enough distinct identifiers for a
    # ~1k BPE vocabulary, while the corpus stays small enough to train on in a second.
    pairs = [(a, _NAMES[(i + k) % len(_NAMES)]) for k in (1, 2, 7) for i, a in enumerate(_NAMES)]
    for template, (op, sym), (a, b) in product(_TEMPLATES, _OPS, pairs):
        yield template.format(op=op, sym=sym, a=a, b=b, A=a.title(), B=b.title())


def _corpus_sha256(corpus: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for text in corpus:
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")  # separator, so ["ab"] and ["a", "b"] differ
    return digest.hexdigest()


def _train_tokenizer(corpus: Sequence[str]) -> Any:
    """A byte-level BPE (GPT-2 style) wrapped as a ``PreTrainedTokenizerFast``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=[EOS_TOKEN, PAD_TOKEN],
        # Every byte is in the base alphabet, so any text (not just the corpus) round-trips.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(corpus, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        # GPT-2 style: one <|endoftext|> serves as bos and eos (never added automatically).
        bos_token=EOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        model_max_length=MODEL_SHAPE["max_position_embeddings"],
    )


def _build_model(tokenizer: Any, seed: int) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **MODEL_SHAPE,
    )
    # Weight init draws from the global RNG: seed it right before, so the build is a
    # function of ``seed`` alone.
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def build_tiny_model(out_dir: Path, *, seed: int = 0, corpus: Iterable[str] | None = None) -> Path:
    """Build (or reuse) the tiny model at ``out_dir`` and return ``out_dir``.

    Deterministic for a given ``seed`` and ``corpus``. Raises ``FileExistsError`` when
    ``out_dir`` holds something else (another build, or files that are not ours).
    """
    texts = list(default_corpus() if corpus is None else corpus)
    wanted = {"version": STAMP_VERSION, "seed": seed, "corpus_sha256": _corpus_sha256(texts)}

    def build(staging: Path) -> dict[str, Any]:
        tokenizer = _train_tokenizer(texts)
        model = _build_model(tokenizer, seed)
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        return {"parameters": sum(p.numel() for p in model.parameters()),
                "vocab_size": len(tokenizer)}

    return build_once(Path(out_dir), stamp_file=STAMP_FILE, wanted=wanted, build=build,
                      refusal=lambda path: FileExistsError(
                          f"{path}: exists and is not a tiny model built with {wanted}"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m convergent.trainer.tiny_model",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="where to write the model and tokenizer")
    parser.add_argument("--seed", type=int, default=0, help="weight-init seed (default 0)")
    args = parser.parse_args(argv)
    try:
        path = build_tiny_model(args.out_dir, seed=args.seed)
    except FileExistsError as error:
        print(f"error: {error}")
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
