"""Prompting instruct models through their chat template (generation and training alike).

A base whose tokenizer carries a chat template is an instruct model: each task prompt is sent as
one user turn asking for the whole function in a fenced block, and training pairs are rendered
the same way, with the answer as the assistant turn (:func:`convergent.completions.fenced_answer`).
A tokenizer without a template (the tiny and embedded models) gets the prompt as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from convergent.completions import fenced_answer

INSTRUCTION = ("Complete the following Python function. Reply with the whole function, "
               "in one ```python code block.\n\n```python\n{prompt}```")


def uses_chat(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def chat_prompt(tokenizer: Any, prompt: str) -> str:
    """``prompt`` as the model should see it: a user turn for an instruct model, else as is."""
    if not uses_chat(tokenizer):
        return prompt
    messages = [{"role": "user", "content": INSTRUCTION.format(prompt=prompt)}]
    return str(tokenizer.apply_chat_template(messages, tokenize=False,
                                             add_generation_prompt=True))


def chat_example(tokenizer: Any, row: Mapping[str, str]) -> dict[str, str]:
    """A prompt/completion training pair in the form :func:`chat_prompt` generates from."""
    if not uses_chat(tokenizer):
        return {"prompt": row["prompt"], "completion": row["completion"]}
    return {"prompt": chat_prompt(tokenizer, row["prompt"]),
            "completion": fenced_answer(row["prompt"], row["completion"])}
