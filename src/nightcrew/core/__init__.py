"""The shared vocabulary at the bottom: states and their transition table,
token counts and per-model usage, the typed events, the domain errors.

Everything in nightcrew may import ``core``; ``core`` imports nothing of ours.
"""
