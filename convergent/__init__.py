"""convergent: verified experience in, reversible LoRA adapters out."""

from __future__ import annotations


def __getattr__(name: str) -> object:
    """``convergent.experience`` / ``record_experience``, imported on first use."""
    if name in ("experience", "record_experience"):
        from convergent import integrations

        return getattr(integrations, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
