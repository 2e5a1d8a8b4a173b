"""Environment for a Claude Code CLI that must talk to the sim and nothing else."""

from __future__ import annotations

from pathlib import Path


def agent_env(base_url: str, config_dir: Path) -> dict[str, str]:
    """Variables that point the CLI at ``base_url`` and isolate it from the real machine.

    - ``ANTHROPIC_BASE_URL`` / ``ANTHROPIC_API_KEY``: model calls go to the sim; any key is
      accepted, and with a key set a fresh config dir needs no login.
    - ``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC``: without it the CLI also calls
      api.anthropic.com directly (bootstrap, feature flags, event logging) and sends a
      ``HEAD /api/hello`` to the base URL. ``DISABLE_TELEMETRY`` and ``DISABLE_AUTOUPDATER``
      are implied by it but spelled out so the intent survives a change in that implication.
    - ``CLAUDE_CONFIG_DIR``: settings, sessions and transcripts go to ``config_dir`` instead
      of ``~/.claude``, so runs neither read the developer's settings nor leave files behind.
    - ``HOME``: a fresh directory beside ``config_dir``. The CLI's Bash tool first snapshots a
      login shell that sources ``~/.bashrc``; a slow or blocking one (seen: a stale pyenv
      rehash lock stalled every Bash call for 10 s, then failed it) must not decide whether a
      scripted run works.
    """
    home = config_dir.parent / "agent-home"
    home.mkdir(parents=True, exist_ok=True)
    return {
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": "sk-ant-sim-offline",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "CLAUDE_CONFIG_DIR": str(config_dir),
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
    }
