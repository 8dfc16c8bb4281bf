"""Members: the models a host can route work to, each one ``generate`` function.

A member is registered through the ``register_members`` hook as ``register(name,
generate)`` with ``generate(prompts, n, temperature, seed) -> list[list[str]]``: ``n``
completions per prompt, in order. Temperature 0 must be deterministic (greedy); a seed
makes sampling repeatable. The built-in member ``base`` is the repo's configured base
model (:mod:`convergent.default_plugins.members`); it is registered first, so a plugin's
member of the same name replaces it. Samplers of the older ``register_samplers`` hook
(``sample(prompt, n)``) are members too, under their own names, unless a member of that
name exists.

Every lever and gap measurement asks its completions here (:func:`complete`), which
checks the member's answer before anything is run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from convergent.errors import ConvergentError

Generate = Callable[[list[str], int, float, int], list[list[str]]]
Sample = Callable[[str, int], list[str]]
BASE = "base"


class MemberError(ConvergentError):
    """A member cannot be used: unknown, or its answer is not n strings per prompt."""


def sampler_member(sample: Sample) -> Generate:
    """A ``register_samplers`` sampler as a member (it takes no temperature nor seed)."""

    def generate(prompts: list[str], n: int, temperature: float, seed: int
                 ) -> list[list[str]]:
        return [sample(prompt, n) for prompt in prompts]

    return generate


def registered_members(config: Mapping[str, Any]) -> dict[str, Generate]:
    """Member name -> generate, from every plugin (built-ins first, so plugins win)."""
    from convergent.plugins import load_plugins

    found: dict[str, Generate] = {}
    samplers: dict[str, Sample] = {}

    def register(name: str, generate: Generate) -> None:
        found[name] = generate

    def register_sampler(name: str, sample: Sample) -> None:
        samplers[name] = sample

    hook = load_plugins().hook
    hook.register_members(register=register, config=config)
    hook.register_samplers(register=register_sampler)
    for name, sample in samplers.items():
        found.setdefault(name, sampler_member(sample))
    return found


def choose_member(config: Mapping[str, Any], name: str | None) -> tuple[str, Generate]:
    """The member named ``name`` (None: the built-in ``base``)."""
    found = registered_members(config)
    name = BASE if name is None else name
    if name not in found:
        raise MemberError(f"no member named {name!r}; registered: "
                          f"{', '.join(sorted(found)) or 'none'} (a host registers its "
                          "models through the register_members hook)")
    return name, found[name]


def complete(name: str, generate: Generate, prompts: Sequence[str], n: int,
             temperature: float, seed: int) -> list[list[str]]:
    """``n`` completions per prompt from the member, checked: a list of ``n`` strings for
    each prompt (a member that over-delivers gets no more tries than asked)."""
    if n < 1:
        raise MemberError(f"n must be at least 1, got {n}")
    if temperature < 0:
        raise MemberError(f"temperature must be >= 0, got {temperature}")
    answer = generate(list(prompts), n, float(temperature), int(seed))
    if not isinstance(answer, list) or len(answer) != len(prompts):
        raise MemberError(f"member {name!r} must return one list of completions per prompt "
                          f"({len(prompts)}), got {type(answer).__name__}"
                          f"{f' of {len(answer)}' if isinstance(answer, list) else ''}")
    out = []
    for number, completions in enumerate(answer):
        if (not isinstance(completions, list) or len(completions) < n
                or not all(isinstance(c, str) for c in completions)):
            raise MemberError(f"member {name!r}, prompt {number}: expected a list of {n} "
                              "strings")
        out.append(list(completions[:n]))
    return out
