"""convergent: verified experience in, reversible LoRA adapters out."""
