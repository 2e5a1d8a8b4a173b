"""nightcrew: run AI coding agents through real work, unattended; the harness,
not the model, decides when a unit of work is done."""

__version__ = "0.1.0"
