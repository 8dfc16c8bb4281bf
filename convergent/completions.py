"""From a model's completion to the program that is run: one rule for every caller.

A base model continues the prompt (the HumanEval convention: prompt + completion is the
program). An instruct model answers in chat, with the code in a fenced block; the program is
then the block that defines the entry point (or the first block), after the prompt's imports.
The tripwire, the levers and the dataset build all go through :func:`program`.
"""

from __future__ import annotations

import re

_FENCE = re.compile(r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)
_IMPORT = re.compile(r"^(?:from\s+\S+\s+import\s+.+|import\s+.+)$")


def fenced_blocks(text: str) -> list[str]:
    """The code of each fenced block in ``text``, in order (an unclosed last block counts)."""
    return [block for block in _FENCE.findall(text) if block.strip()]


def _prompt_imports(prompt: str) -> str:
    lines = [line for line in prompt.splitlines() if _IMPORT.match(line)]
    return "".join(f"{line}\n" for line in lines)


def program(prompt: str, completion: str, entry_point: str | None = None) -> str:
    """The source that is run for ``completion`` of ``prompt``.

    Without a fenced block: ``prompt + completion``. With one: the first block that defines
    ``entry_point`` (else the first block), preceded by the prompt's import lines; a block that
    defines no function continues the prompt like a plain completion.
    """
    blocks = fenced_blocks(completion)
    if not blocks:
        return f"{prompt}{completion}\n"
    defines = re.compile(rf"^\s*(?:async\s+)?def\s+{re.escape(entry_point)}\s*\(", re.MULTILINE
                         ) if entry_point else None
    chosen = next((b for b in blocks if defines and defines.search(b)), blocks[0])
    if not re.search(r"^\s*(?:async\s+)?def\s", chosen, re.MULTILINE):
        return f"{prompt}{chosen}\n"
    return f"{_prompt_imports(prompt)}{chosen}\n"


def continuation(task: str, response: str) -> str:
    """An experience as a training completion of its task: what follows the task in the
    response when the response repeats it (a HumanEval-style prompt and its solution), else
    the whole response. The inverse of :func:`program` for a plain continuation."""
    return response[len(task):] if task and response.startswith(task) else response


def fenced_answer(prompt: str, completion: str) -> str:
    """``completion`` as an instruct model should answer: the whole program in one block."""
    if fenced_blocks(completion):
        return completion
    body = completion if re.match(r"\s*(?:from|import|def|class|async)\b", completion) \
        else f"{prompt}{completion}"
    return f"```python\n{body.strip()}\n```"
