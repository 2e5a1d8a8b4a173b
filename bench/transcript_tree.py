"""A synthetic Claude Code transcript tree for the usage-import benchmark.

``generate(root, ...)`` writes ``root/projects/<escaped-cwd>/<session>.jsonl``
files, plus subagent files ``<session>/subagents/agent-<id>.jsonl`` (and their
``.meta.json``), so ``CLAUDE_CONFIG_DIR=root`` points ccusage at the tree. The
line mix follows what Claude Code 2.x writes (see the research notes,
formats.md section 2): by bytes mostly ``user`` tool-result lines with large
``toolUseResult`` payloads, then ``assistant`` lines, ``file-history-snapshot``
lines (large, growing with the files a session touched) and ``attachment``
lines, with a few ``system``, ``summary``, ``cost-state`` and
``queue-operation`` lines.

An API response is written as one or two ``assistant`` lines that share
``message.id`` and ``requestId`` and carry the same final usage. Ids are unique
across the tree, so the deduplicated responses are exactly the responses the
generator made, and :class:`TreeStats` carries their token totals: the ground
truth both tools are checked against. There are no malformed lines. A few
things a careless importer would count twice are there on purpose:
``cost-state`` lines (cumulative ``modelUsage``) and the ``usage`` inside a
``Task`` tool result.

The output is deterministic for a seed. Payloads are rendered once and reused,
and lines go out in multi-MB writes, so 1 GB takes seconds.

    .venv/bin/python bench/transcript_tree.py ROOT [--size-mb 50] [--files 100] [--big-mb 10]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import re
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MIB = 1 << 20
GIB = 1 << 30

# Bump when the tree's content changes, so a kept tree is regenerated.
FORMAT_VERSION = 1

SONNET = "claude-sonnet-4-5-20250929"
OPUS = "claude-opus-4-5-20251101"
HAIKU = "claude-haiku-4-5-20251001"
MODELS = (SONNET, OPUS, HAIKU)
MAIN_MODEL_WEIGHTS = (0.6, 0.34, 0.06)
SUBAGENT_MODEL_WEIGHTS = (0.45, 0.1, 0.45)

# USD per million tokens: input, output, cache read, 5-minute write, 1-hour write
# (list prices, formats.md section 3). Only for the printed estimate.
PRICES: dict[str, tuple[float, float, float, float, float]] = {
    SONNET: (3.0, 15.0, 0.30, 3.75, 6.0),
    OPUS: (5.0, 25.0, 0.50, 6.25, 10.0),
    HAIKU: (1.0, 5.0, 0.10, 1.25, 2.0),
}

EPOCH = datetime(2026, 8, 24, tzinfo=UTC)  # sessions fall in the 60 days after this
SPAN_DAYS = 60
VERSIONS = ("2.0.76", "2.1.12", "2.1.97", "2.1.329")
BRANCHES = ("main", "main", "main", "feature/usage-report", "fix/flaky-tests", "")
FLUSH_CHARS = 8 * MIB
MIN_FILE_BYTES = 3000
NON_ASSISTANT_SHARE = 0.02  # main files with only summaries and snapshots
SUBAGENT_SHARE = 1 / 6
MAX_TRACKED = 250  # files in one file-history snapshot

PROJECT_NAMES = (
    "api-gateway",
    "web_app.v2",
    "ml pipeline",
    "nightcrew",
    "billing-service",
    "infra.terraform",
    "docs-site",
    "mobile_client",
    "data-warehouse",
    "auth0-migration",
    "search.indexer",
    "cli-tools",
    "payments_v3",
    "notebook experiments",
    "k8s-operators",
    "frontend-monorepo",
    "etl.jobs",
    "game-engine",
    "chat_backend",
    "firmware-esp32",
    "llm-evals",
    "static.blog",
    "scheduler",
    "crm-sync",
    "geo-tiles",
    "video_transcoder",
    "rust-playground",
    "ops-runbooks",
    "pricing-engine",
    "design-system",
    "sdk.python",
    "sdk-typescript",
    "mail_relay",
    "cache-proxy",
    "wiki.export",
    "metrics-agent",
    "bug-bash-2026",
    "tax_calculator",
    "iot.hub",
    "reporting",
)

_WORDS = """
user session token cache request payload config router handler store record batch item queue
result parser schema index buffer stream client server report price model usage entry window
block limit retry timeout budget worker plan task gate commit diff branch agent prompt tool
event metric trace span ledger invoice tenant account policy
"""
WORDS = tuple(_WORDS.split())
TYPES = ("str", "int", "bytes", "Path", "Decimal", "dict[str, Any]", "list[Entry]", "Record")
ERRORS = ("ValueError", "KeyError", "ApiError", "TimeoutError", "UsageError")
SENTENCE_BITS = (
    "the importer reads each file once",
    "cache writes are priced per tier",
    "this keeps the hot path allocation-free",
    "tests cover the empty case",
    "the schema migration runs on open",
    "a retry only happens on 429 and 529",
    "we never block the event loop here",
    "the parser skips unknown line types",
    "totals are exact integers, never floats",
    "the lock is held only while writing",
    "see docs/usage.md for the format",
    "résumé of the previous attempt — kept short",
    "the window closes after five hours",
    "costs are estimates at list price",
)
CODE_LINES = (
    "def {w}_{v}(self, {x}: {t}, {y}: int = {n}) -> {u}:",
    '    """{S}."""',
    "    {x} = self._{y}.{w}({v}, timeout={n})",
    "    if {x}.{y} is None:",
    '        raise {e}(f"{x} missing: {{{y}!r}}")',
    "    for {x} in {y}s:",
    "        {w}[{x}.{v}] = {x}",
    "    return {x}",
    "",
    "class {W}{V}({U}):",
    "    # {s} \u2014 {n} ms budget",
    "import {w}",
    "from {w}.{v} import {W}{V}",
    '    log.debug("{s} \u2713 %s", {x})',
    "    {x}: {t} = field(default_factory={u})",
    "        await self.{w}_{v}({x}, {y}={n})",
)
SHELL_LINES = (
    "tests/test_{w}.py::test_{w}_{v} PASSED{pad}[{p:3d}%]",
    "tests/test_{w}.py::test_{v}_{x} FAILED{pad}[{p:3d}%]",
    "-rw-r--r--  1 dev dev {n:6d} Oct {d:2d} 12:{m:02d} {w}_{v}.py",
    "{h} {S}",
    "src/{w}/{v}.py:{n}:{d}: E501 line too long ({n} > 100)",
    "  {w}/{v}.py | {d} {bar}",
    "error[E0382]: borrow of moved value: `{w}`",
    "   Compiling {w}-{v} v0.{d}.{m}",
    "npm warn deprecated {w}@{d}.{m}.0: use {v} instead",
)
PROMPTS = (
    "Add a --since flag to the usage report and make it accept YYYY-MM-DD.",
    "The import is slow on my 3 GB ~/.claude. Profile it and fix the hot path.",
    "Write tests for the 5-hour block grouping, including the gap case.",
    "Why does the cost differ from what Claude Code printed? Compare both.",
    "Refactor the parser so unknown line types are skipped cheaply.",
    "Fix the flaky test in tests/test_runner.py \u2014 it fails on CI only.",
    "Rename Record to Entry everywhere and update the docs.",
    "continue",
    "Looks good. Commit it and move on to the next task in PLAN.md.",
    "Can you explain what this function does and whether it is still used?",
)


def escape_cwd(cwd: str) -> str:
    """Claude Code's project dir name: every char outside [A-Za-z0-9] becomes '-'."""
    return re.sub(r"[^A-Za-z0-9]", "-", cwd)


# ---- results ------------------------------------------------------------------


@dataclass
class Tokens:
    """Token totals of deduplicated responses (one response = one message id)."""

    responses: int = 0
    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0

    @property
    def cache_creation(self) -> int:
        return self.cache_write_5m + self.cache_write_1h

    @property
    def total(self) -> int:
        return self.input + self.output + self.cache_read + self.cache_creation

    def add(self, other: Tokens) -> None:
        self.responses += other.responses
        self.input += other.input
        self.output += other.output
        self.cache_read += other.cache_read
        self.cache_write_5m += other.cache_write_5m
        self.cache_write_1h += other.cache_write_1h

    def cost_usd(self, model: str) -> float:
        p_in, p_out, p_read, p_5m, p_1h = PRICES[model]
        return (
            self.input * p_in
            + self.output * p_out
            + self.cache_read * p_read
            + self.cache_write_5m * p_5m
            + self.cache_write_1h * p_1h
        ) / 1e6


@dataclass
class TreeStats:
    """What :func:`generate` wrote, and the token totals both tools must report."""

    root: str
    seed: int
    files: int  # .jsonl files (main and subagent)
    main_files: int
    subagent_files: int
    projects: int
    bytes: int  # bytes of all .jsonl files
    largest_file_bytes: int
    lines: int
    assistant_lines: int
    first_timestamp: str
    last_timestamp: str
    seconds: float  # time generate() took
    by_model: dict[str, Tokens] = field(default_factory=dict)
    chars_by_type: dict[str, int] = field(default_factory=dict)  # line "type" -> chars

    @property
    def totals(self) -> Tokens:
        out = Tokens()
        for tokens in self.by_model.values():
            out.add(tokens)
        return out

    @property
    def responses(self) -> int:
        return self.totals.responses

    @property
    def input_tokens(self) -> int:
        return self.totals.input

    @property
    def output_tokens(self) -> int:
        return self.totals.output

    @property
    def cache_read_tokens(self) -> int:
        return self.totals.cache_read

    @property
    def cache_creation_tokens(self) -> int:
        return self.totals.cache_creation

    @property
    def cache_write_5m_tokens(self) -> int:
        return self.totals.cache_write_5m

    @property
    def cache_write_1h_tokens(self) -> int:
        return self.totals.cache_write_1h

    @property
    def total_tokens(self) -> int:
        return self.totals.total

    @property
    def cost_usd(self) -> float:
        """The list-price estimate (5m and 1h writes at their own rates)."""
        return sum(tokens.cost_usd(model) for model, tokens in self.by_model.items())

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TreeStats:
        data = dict(data)
        data["by_model"] = {m: Tokens(**t) for m, t in data.get("by_model", {}).items()}
        return cls(**data)


# ---- rendered payloads ----------------------------------------------------------


def _js(value: object) -> str:
    """JSON as Claude Code writes it (JSON.stringify: raw UTF-8, no spaces)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@dataclass
class _Source:
    """A source file: its raw text and the ``cat -n`` form the Read tool returns."""

    raw: str  # JSON string literal
    numbered: str  # JSON string literal
    lines: int
    snippet: str  # JSON string literal: a numbered excerpt (edit results, attachments)
    old: str  # JSON string literal: an old_string out of the file
    new: str  # JSON string literal: its replacement
    patch: str  # JSON: structuredPatch


class _Pools:
    """Payloads rendered once; every line picks from these."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.paths = [self._path() for _ in range(500)]
        sizes = [int(2 ** rng.uniform(8, 14.6)) for _ in range(80)]  # 0.25-24 KB
        sizes += [int(2 ** rng.uniform(16, 17.6)) for _ in range(6)]  # 64-200 KB, rare
        self.sources = [self._source(size) for size in sizes]
        self.n_common = 80
        self.outputs = [_js(self._shell(int(2 ** rng.uniform(7, 14.5)))) for _ in range(60)]
        self.texts = [_js(self._prose(int(2 ** rng.uniform(6, 11)))) for _ in range(80)]
        self.thoughts = [_js(self._prose(int(2 ** rng.uniform(7, 10.5)))) for _ in range(60)]
        self.signatures = [
            base64.b64encode(rng.randbytes(rng.randint(300, 900))).decode() for _ in range(40)
        ]
        self.prompts = [_js(p) for p in PROMPTS]
        self.long_prompts = [_js(self._prose(int(2 ** rng.uniform(9, 11)))) for _ in range(20)]
        self.commands = [
            _js({"command": c, "description": d})
            for c, d in (
                (".venv/bin/pytest -q tests/", "Run the test suite"),
                ("git status --short && git diff --stat", "Show working tree changes"),
                ("ls -la src/", "List source files"),
                ("npm run build 2>&1 | tail -40", "Build the frontend"),
                ("cargo test --workspace 2>&1 | tail -60", "Run Rust tests"),
                (".venv/bin/ruff check . && .venv/bin/mypy", "Lint and type-check"),
                ("git log --oneline -20", "Recent commits"),
            )
        ]
        self.summaries = [_js(self._prose(rng.randint(30, 90)).rstrip(".")) for _ in range(30)]
        self.env_blobs = [_js(self._prose(int(2 ** rng.uniform(9, 11)))) for _ in range(10)]
        self.git_blobs = [_js(self._shell(int(2 ** rng.uniform(8, 11.5)))) for _ in range(10)]
        self.todos = [self._todos() for _ in range(10)]
        self.diagnostics = [self._diagnostics() for _ in range(10)]

    def _words(self, k: int) -> list[str]:
        return self.rng.choices(WORDS, k=k)

    def _path(self) -> str:
        rng = self.rng
        w = self._words(3)
        return rng.choice(
            (
                f"src/{w[0]}/{w[1]}_{w[2]}.py",
                f"tests/test_{w[0]}_{w[1]}.py",
                f"docs/{w[0]}-{w[1]}.md",
                f"web/src/components/{w[0].title()}{w[1].title()}.tsx",
                f"crates/{w[0]}/src/{w[1]}.rs",
            )
        )

    def _sentence(self) -> str:
        bit = self.rng.choice(SENTENCE_BITS)
        return bit[0].upper() + bit[1:]

    def _prose(self, size: int) -> str:
        parts: list[str] = []
        n = 0
        while n < size:
            s = self._sentence() + (
                f" ({' '.join(self._words(self.rng.randint(2, 6)))})."
                if self.rng.random() < 0.5
                else "."
            )
            parts.append(s)
            n += len(s) + 1
        return " ".join(parts)

    def _fill(self, template: str) -> str:
        rng = self.rng
        w, v, x, y = self._words(4)
        return template.format(
            w=w,
            v=v,
            x=x,
            y=y,
            W=w.title(),
            V=v.title(),
            U=rng.choice(TYPES),
            u=rng.choice(("list", "dict", "set", "Record")),
            t=rng.choice(TYPES),
            e=rng.choice(ERRORS),
            n=rng.randint(1, 9999),
            d=rng.randint(1, 31),
            m=rng.randint(0, 59),
            p=rng.randint(0, 100),
            h=f"{rng.getrandbits(28):07x}",
            s=rng.choice(SENTENCE_BITS),
            S=self._sentence(),
            pad=" " * rng.randint(1, 12),
            bar="+" * rng.randint(1, 30) + "-" * rng.randint(0, 12),
        )

    def _code(self, size: int) -> list[str]:
        lines: list[str] = []
        n = 0
        while n < size:
            line = self._fill(self.rng.choice(CODE_LINES))
            lines.append(line)
            n += len(line) + 1
        return lines

    def _shell(self, size: int) -> str:
        lines: list[str] = []
        n = 0
        while n < size:
            line = self._fill(self.rng.choice(SHELL_LINES))
            lines.append(line)
            n += len(line) + 1
        return "\n".join(lines)

    def _source(self, size: int) -> _Source:
        rng = self.rng
        lines = self._code(size)
        numbered = "".join(f"{i:>6}\u2192{line}\n" for i, line in enumerate(lines, 1))
        at = rng.randrange(len(lines))
        old = "\n".join(lines[at : at + rng.randint(1, 6)])
        new = "\n".join(self._code(len(old) + rng.randint(0, 400)))
        lo = max(0, at - 4)
        excerpt = lines[lo : at + 30]
        snippet = "".join(f"{lo + i + 1:>6}\u2192{line}\n" for i, line in enumerate(excerpt))
        hunk = [" " + x for x in lines[lo:at]] + ["-" + x for x in old.split("\n")]
        hunk += ["+" + x for x in new.split("\n")]
        patch = [
            {
                "oldStart": lo + 1,
                "oldLines": len(hunk),
                "newStart": lo + 1,
                "newLines": len(hunk),
                "lines": hunk,
            }
        ]
        return _Source(
            raw=_js("\n".join(lines) + "\n"),
            numbered=_js(numbered),
            lines=len(lines),
            snippet=_js(snippet),
            old=_js(old),
            new=_js(new),
            patch=_js(patch),
        )

    def _todos(self) -> str:
        items = [
            {
                "content": self._sentence(),
                "status": self.rng.choice(("pending", "in_progress", "completed")),
                "activeForm": self._sentence(),
            }
            for _ in range(self.rng.randint(2, 8))
        ]
        return _js({"type": "todo_reminder", "content": items, "itemCount": len(items)})

    def _diagnostics(self) -> str:
        items = [
            {
                "message": self._sentence(),
                "severity": self.rng.choice(("Error", "Warning", "Info")),
                "range": {
                    "start": {"line": (n := self.rng.randint(1, 900)), "character": 4},
                    "end": {"line": n, "character": self.rng.randint(5, 90)},
                },
                "source": self.rng.choice(("Pylance", "ruff", "tsserver", "rust-analyzer")),
                "code": self.rng.choice(("reportAttributeAccessIssue", "E501", "2339", "E0382")),
            }
            for _ in range(self.rng.randint(1, 12))
        ]
        return _js(items)

    def source(self) -> _Source:
        if self.rng.random() < 0.03:
            return self.sources[self.rng.randrange(self.n_common, len(self.sources))]
        return self.sources[self.rng.randrange(self.n_common)]


# ---- the generator ----------------------------------------------------------------


def _iso(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


class _Gen:
    """State shared by every file: the random stream, unique ids, the totals."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.pools = _Pools(random.Random(f"pools-{seed}"))
        self._counter = 0
        self._salt = random.Random(f"ids-{seed}").getrandbits(96)
        self.by_model: dict[str, Tokens] = {m: Tokens() for m in MODELS}
        self.chars_by_type: dict[str, int] = defaultdict(int)
        self.lines = 0
        self.assistant_lines = 0
        self.first_ms: int | None = None
        self.last_ms = 0

    def uid(self) -> str:
        """A unique 24-hex-digit id: an odd multiplier is a bijection mod 2**96."""
        self._counter += 1
        x = (self._counter * 0x9E3779B97F4A7C15F39CC061 + self._salt) & ((1 << 96) - 1)
        return f"{x:024x}"

    def uuid(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        variant = "89ab"[int(h[16], 16) & 3]
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:32]}"


class _Session:
    """Writes one transcript file, a main session or a subagent's."""

    def __init__(
        self,
        gen: _Gen,
        path: Path,
        *,
        cwd: str,
        session_id: str,
        start_ms: int,
        agent_id: str | None = None,
        agents: Sequence[str] = (),
    ) -> None:
        self.g = gen
        self.rng = gen.rng
        self.p = gen.pools
        self.path = path
        self.cwd = cwd
        self.sid = session_id
        self.agent_id = agent_id
        self.t = start_ms
        self.parent = "null"  # JSON: the previous line's uuid
        weights = SUBAGENT_MODEL_WEIGHTS if agent_id else MAIN_MODEL_WEIGHTS
        self.model = self.rng.choices(MODELS, weights)[0]
        self.version = self.rng.choice(VERSIONS)
        cwd_js = _js(cwd)
        sidechain = "true" if agent_id else "false"
        agent = f'"agentId":"{agent_id}",' if agent_id else ""
        self.head = (
            f',"isSidechain":{sidechain},"userType":"external","cwd":{cwd_js},'
            f'"sessionId":"{session_id}","version":"{self.version}",'
            f'"gitBranch":"{self.rng.choice(BRANCHES)}",{agent}'
        )
        self.pending_agents = list(agents)
        self.agent_starts: dict[str, int] = {}
        self.tokens: dict[str, Tokens] = {}  # this session, for cost-state lines
        self.tracked: list[str] = []
        self.tracked_js = ""
        self.last_result: str = ""
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = path.open("wb")
        self._parts: list[str] = []
        self._pending = 0
        self.chars = 0
        self.bytes = 0

    # -- output

    def _line(self, kind: str, parts: list[str]) -> None:
        n = sum(map(len, parts))
        self._parts += parts
        self._pending += n
        self.chars += n
        self.g.chars_by_type[kind] += n
        self.g.lines += 1
        if self._pending >= FLUSH_CHARS:
            self._flush()

    def _flush(self) -> None:
        if self._parts:
            data = "".join(self._parts).encode()
            self._fh.write(data)
            self.bytes += len(data)
            self._parts.clear()
            self._pending = 0

    def close(self) -> int:
        self._flush()
        self._fh.close()
        last = self.t // 1000
        os.utime(self.path, (last, last))
        return self.bytes

    def _tick(self, low: float, high: float) -> str:
        self.t += int(self.rng.uniform(low, high) * 1000)
        g = self.g
        if g.first_ms is None or self.t < g.first_ms:
            g.first_ms = self.t
        g.last_ms = max(g.last_ms, self.t)
        return _iso(self.t)

    def _uuid(self) -> str:
        u = self.g.uuid()
        self.parent = f'"{u}"'
        return u

    # -- line kinds

    def summary(self) -> None:
        text = self.rng.choice(self.p.summaries)
        leaf = self.g.uuid()
        self._line("summary", ['{"type":"summary","summary":', text, f',"leafUuid":"{leaf}"}}\n'])

    def queue_operation(self, prompt: str) -> None:
        for op, content in (("enqueue", f',"content":{prompt}'), ("dequeue", "")):
            ts = self._tick(0.0, 0.2)
            head = f'{{"type":"queue-operation","operation":"{op}","timestamp":"{ts}",'
            self._line("queue-operation", [head, f'"sessionId":"{self.sid}"{content}}}\n'])

    def snapshot(self, update: bool) -> None:
        mid = self.g.uuid()
        ts = _iso(self.t)
        head = f'{{"type":"file-history-snapshot","messageId":"{mid}","snapshot":{{"messageId":'
        tail = f'}},"timestamp":"{ts}"}},"isSnapshotUpdate":{"true" if update else "false"}}}\n'
        self._line(
            "file-history-snapshot",
            [head, f'"{mid}","trackedFileBackups":{{', self.tracked_js, tail],
        )

    def track(self, rel: str) -> None:
        if len(self.tracked) >= MAX_TRACKED:
            return
        key = f"{self.cwd}/{rel}"
        version = self.rng.randint(1, 9)
        entry = (
            f'{_js(key)}:{{"backupFileName":"{self.g.uid()[:16]}@v{version}",'
            f'"version":{version},"backupTime":"{_iso(self.t)}"}}'
        )
        self.tracked.append(entry)
        self.tracked_js = f"{self.tracked_js},{entry}" if self.tracked_js else entry

    def prompt(self, content: str) -> None:
        parent = self.parent
        ts = self._tick(20.0, 900.0)
        u = self._uuid()
        line = ['{"parentUuid":', parent, self.head, '"type":"user","message":{"role":"user",']
        line += ['"content":', content, f'}},"uuid":"{u}","timestamp":"{ts}",']
        line += ['"thinkingMetadata":{"level":"high","disabled":false,"triggers":[]},"todos":[]}\n']
        self._line("user", line)

    def attachment(self, body: str) -> None:
        parent = self.parent
        ts = self._tick(0.0, 0.05)
        u = self._uuid()
        line = ['{"parentUuid":', parent, self.head, '"type":"attachment","attachment":', body]
        line.append(f',"uuid":"{u}","timestamp":"{ts}"}}\n')
        self._line("attachment", line)

    def system(self) -> None:
        parent = self.parent
        ts = self._tick(0.5, 5.0)
        u = self._uuid()
        if self.rng.random() < 0.5:
            tail = (
                '"type":"system","subtype":"compact_boundary","content":"Conversation compacted",'
                f'"isMeta":false,"timestamp":"{ts}","uuid":"{u}","level":"info",'
                '"compactMetadata":{"trigger":"auto","preTokens":'
                f"{self.rng.randint(150000, 190000)}}}}}\n"
            )
        else:
            tail = (
                '"type":"system","subtype":"local_command","content":'
                '"<command-name>/model</command-name>\\n<command-message>model</command-message>",'
                f'"isMeta":false,"timestamp":"{ts}","uuid":"{u}","level":"info"}}\n'
            )
        self._line(
            "system", ['{"parentUuid":', parent, ',"logicalParentUuid":null', self.head, tail]
        )

    def cost_state(self) -> None:
        usage: list[str] = []
        cost = 0.0
        for model, t in self.tokens.items():
            c = t.cost_usd(model)
            cost += c
            usage.append(
                f'"{model}":{{"inputTokens":{t.input},"outputTokens":{t.output},'
                f'"cacheReadInputTokens":{t.cache_read},"cacheCreationInputTokens":{t.cache_creation},'
                f'"cacheCreationEphemeral5mInputTokens":{t.cache_write_5m},'
                f'"cacheCreationEphemeral1hInputTokens":{t.cache_write_1h},'
                f'"webSearchRequests":0,"costUSD":{c:.6f}}}'
            )
        ms = self.rng.randint(10_000, 9_000_000)
        added, removed = self.rng.randint(0, 3000), self.rng.randint(0, 900)
        line = [f'{{"type":"cost-state","sessionId":"{self.sid}","totalCostUSD":{cost:.6f},']
        line += [f'"totalAPIDuration":{ms},"totalDuration":{ms * 3},"totalLinesAdded":{added},']
        line += [f'"totalLinesRemoved":{removed},"modelUsage":{{', ",".join(usage)]
        line += ['},"hasUnknownModelCost":false}\n']
        self._line("cost-state", line)

    def _usage(self) -> tuple[Tokens, str]:
        rng = self.rng
        r = rng.random()
        tokens_in = (
            rng.randint(1, 12)
            if r < 0.8
            else rng.randint(20, 800)
            if r < 0.95
            else rng.randint(1000, 6000)
        )
        read = rng.randint(8_000, 160_000)
        r = rng.random()
        write = rng.randint(80, 3000) if r < 0.7 else rng.randint(3000, 25_000) if r < 0.95 else 0
        r = rng.random()
        write_1h = 0 if r < 0.55 else write if r < 0.85 else rng.randint(0, write)
        out = rng.randint(20, 1500) if rng.random() < 0.7 else rng.randint(1500, 6000)
        tokens = Tokens(1, tokens_in, out, read, write - write_1h, write_1h)
        js = (
            f'{{"input_tokens":{tokens_in},"cache_creation_input_tokens":{write},'
            f'"cache_read_input_tokens":{read},"cache_creation":{{"ephemeral_5m_input_tokens":'
            f'{write - write_1h},"ephemeral_1h_input_tokens":{write_1h}}},"output_tokens":{out},'
            '"service_tier":"standard"}'
        )
        return tokens, js

    def response(self, tool: str | None) -> tuple[str, str, Any]:
        """One API response: 1 or 2 assistant lines with the same id and usage.

        Returns the tool_use id, the last line's uuid and what the tool result
        needs (a path and a source, a command, an agent id).
        """
        rng, p, g = self.rng, self.p, self.g
        model = self.model if rng.random() > 0.02 else rng.choice(MODELS)
        tokens, usage = self._usage()
        g.by_model[model].add(tokens)
        self.tokens.setdefault(model, Tokens()).add(tokens)
        msg_id = f"msg_01{g.uid()}"
        req_id = f"req_011C{g.uid()}"
        tool_id = f"toolu_01{g.uid()}"
        extra: Any = None
        blocks: list[str] = []
        r = rng.random()
        if r < 0.3:
            blocks.append(
                f'{{"type":"thinking","thinking":{rng.choice(p.thoughts)},'
                f'"signature":"{rng.choice(p.signatures)}"}}'
            )
        elif r < 0.6 or tool is None:
            blocks.append(f'{{"type":"text","text":{rng.choice(p.texts)}}}')
        if tool is None:
            stop = "end_turn"
            if not blocks or blocks[0].startswith('{"type":"thinking"'):
                blocks.append(f'{{"type":"text","text":{rng.choice(p.texts)}}}')
        else:
            stop = "tool_use"
            path = f"{self.cwd}/{rng.choice(p.paths)}"
            if tool in ("Read", "Edit", "Write"):
                extra = (path, p.source())
            if tool == "Read":
                tool_input = f'{{"file_path":{_js(path)}}}'
            elif tool == "Edit":
                src = extra[1]
                tool_input = (
                    f'{{"file_path":{_js(path)},"old_string":{src.old},"new_string":{src.new}}}'
                )
            elif tool == "Write":
                tool_input = f'{{"file_path":{_js(path)},"content":{extra[1].raw}}}'
            elif tool == "Bash":
                tool_input = rng.choice(p.commands)
            elif tool == "Grep":
                tool_input = (
                    f'{{"pattern":"def {rng.choice(WORDS)}_","output_mode":"files_with_matches"}}'
                )
            else:  # Task
                extra = self.pending_agents.pop(0)
                self.agent_starts[extra] = self.t
                tool_input = (
                    f'{{"description":"Investigate the {rng.choice(WORDS)} module",'
                    f'"prompt":{rng.choice(p.long_prompts)},"subagent_type":"general-purpose"}}'
                )
            blocks.append(
                f'{{"type":"tool_use","id":"{tool_id}","name":"{tool}","input":{tool_input}}}'
            )
        self._tick(2.0, 40.0)
        for block in blocks:
            parent = self.parent
            ts = self._tick(0.0, 0.3)
            u = self._uuid()
            line = ['{"parentUuid":', parent, self.head, f'"message":{{"model":"{model}",']
            line += [f'"id":"{msg_id}","type":"message","role":"assistant","content":[', block]
            line += ['],"stop_reason":"', stop, '","stop_sequence":null,"usage":', usage]
            line += [f'}},"requestId":"{req_id}","type":"assistant","uuid":"{u}",']
            line += [f'"timestamp":"{ts}"}}\n']
            self._line("assistant", line)
            g.assistant_lines += 1
        return tool_id, self.parent.strip('"'), extra

    def tool_result(self, tool: str, tool_id: str, source_uuid: str, extra: Any) -> None:
        rng, p = self.rng, self.p
        if tool == "Read":
            path, src = extra
            content = src.numbered
            result = [f'{{"type":"text","file":{{"filePath":{_js(path)},"content":', src.raw]
            result += [f',"numLines":{src.lines},"startLine":1,"totalLines":{src.lines}}}}}']
        elif tool == "Edit":
            path, src = extra
            # one JSON string: the message, then the numbered snippet (already escaped)
            content = (
                _js(
                    f"The file {path} has been updated. Here's the result of running `cat -n`"
                    " on a snippet of the edited file:\n"
                )[:-1]
                + src.snippet[1:]
            )
            result = [f'{{"filePath":{_js(path)},"oldString":', src.old, ',"newString":', src.new]
            result += [',"originalFile":', src.raw, ',"structuredPatch":', src.patch]
            result += [',"userModified":false,"replaceAll":false}']
            self.track(path[len(self.cwd) + 1 :])
        elif tool == "Write":
            path, src = extra
            content = _js(f"File created successfully at: {path}")
            result = [f'{{"type":"create","filePath":{_js(path)},"content":', src.raw]
            result += [',"structuredPatch":[],"originalFile":null}']
            self.track(path[len(self.cwd) + 1 :])
        elif tool == "Bash":
            out = rng.choice(p.outputs)
            content = out
            result = ['{"stdout":', out, ',"stderr":"","interrupted":false,"isImage":false}']
        elif tool == "Grep":
            names = [rng.choice(p.paths) for _ in range(rng.randint(1, 25))]
            content = _js(f"Found {len(names)} files\n" + "\n".join(names))
            result = [
                f'{{"mode":"files_with_matches","filenames":{_js(names)},"numFiles":{len(names)}}}'
            ]
        else:  # Task: its usage is the subagent's, a trap for importers that read user lines
            text = rng.choice(p.texts)
            _, usage = self._usage()
            content = f'[{{"type":"text","text":{text}}}]'
            prompt = rng.choice(p.long_prompts)
            result = [f'{{"status":"completed","prompt":{prompt},"agentId":"{extra}",']
            result += [f'"content":[{{"type":"text","text":{text}}}],']
            result += [f'"totalDurationMs":{rng.randint(5000, 900_000)},']
            result += [f'"totalTokens":{rng.randint(10_000, 900_000)},']
            result += [f'"totalToolUseCount":{rng.randint(1, 60)},"usage":', usage, "}"]
        parent = self.parent
        ts = self._tick(0.05, 8.0)
        u = self._uuid()
        line = ['{"parentUuid":', parent, self.head, '"type":"user","message":{"role":"user",']
        line += [f'"content":[{{"tool_use_id":"{tool_id}","type":"tool_result","content":']
        line += [content, f'}}]}},"uuid":"{u}","timestamp":"{ts}","toolUseResult":', *result]
        line += [f',"sourceToolAssistantUUID":"{source_uuid}"}}\n']
        self._line("user", line)
        if tool == "Edit":
            path, src = extra
            if rng.random() < 0.7:
                self.attachment(
                    f'{{"type":"edited_text_file","filename":{_js(path)},"snippet":{src.snippet}}}'
                )
            if rng.random() < 0.4:
                self.attachment(
                    f'{{"type":"diagnostics","files":[{{"uri":{_js("file://" + path)},'
                    f'"diagnostics":{rng.choice(p.diagnostics)}}}],"isNew":true}}'
                )
        if tool in ("Edit", "Write") and self.agent_id is None and rng.random() < 0.5:
            self.snapshot(update=True)

    # -- whole files

    def _tool(self) -> str:
        if self.pending_agents and self.rng.random() < 0.12:
            return "Task"
        return self.rng.choices(
            ("Read", "Bash", "Edit", "Grep", "Write"), (0.36, 0.31, 0.17, 0.1, 0.06)
        )[0]

    def _turns(self, target: int) -> None:
        """Responses and tool results until the user's turn or the target size."""
        for _ in range(self.rng.randint(3, 30)):
            if self.chars >= target:
                return
            tool = self._tool()
            tool_id, uuid, extra = self.response(tool)
            self.tool_result(tool, tool_id, uuid, extra)
            if self.rng.random() < 0.12:
                self.attachment(self.rng.choice(self.p.todos))
        self.response(None)

    def _user_turn(self, first: bool) -> None:
        rng, p = self.rng, self.p
        prompt = rng.choice(p.prompts)
        if rng.random() < 0.3:
            self.queue_operation(prompt)
        self.snapshot(update=False)
        self.prompt(prompt)
        if first or rng.random() < 0.3:
            self.attachment(f'{{"type":"environment","content":{rng.choice(p.env_blobs)}}}')
        if rng.random() < 0.5:
            self.attachment(f'{{"type":"git_status","content":{rng.choice(p.git_blobs)}}}')
        if rng.random() < 0.6:
            src = p.source()
            self.attachment(
                f'{{"type":"nested_memory","path":{_js(self.cwd + "/CLAUDE.md")},'
                f'"content":{{"type":"text","file":{{"content":{src.raw},"numLines":{src.lines}}}}}}}'
            )
        if first:
            self.attachment(
                f'{{"type":"model_identity","model":"{self.model}","content":'
                f'"You are powered by the model {self.model}."}}'
            )

    def write_main(self, target: int) -> None:
        rng = self.rng
        if rng.random() < 0.08:
            for _ in range(rng.randint(1, 3)):
                self.summary()
        for rel in rng.sample(self.p.paths, rng.randint(0, 120)):
            self.track(rel)
        first = True
        while self.chars < target:
            self._user_turn(first)
            first = False
            self._turns(target)
            r = rng.random()
            if r < 0.04:
                self.system()
            elif r < 0.07:  # the process exited; the session is resumed later
                self.cost_state()
                self.t += rng.randint(600, 40_000) * 1000
        if rng.random() < 0.7:
            self.cost_state()

    def write_snapshots_only(self, target: int) -> None:
        """A file without responses: summaries and file-history snapshots."""
        for _ in range(self.rng.randint(1, 4)):
            self.summary()
        for rel in self.rng.sample(self.p.paths, self.rng.randint(20, 300)):
            self.track(rel)
        while self.chars < target:
            self._tick(5.0, 120.0)
            self.snapshot(update=self.rng.random() < 0.7)

    def write_subagent(self, target: int) -> None:
        self.prompt(self.rng.choice(self.p.long_prompts))
        while self.chars < target:
            self._turns(target)


# ---- the tree ------------------------------------------------------------------------


@dataclass
class _Plan:
    cwd: str
    session_id: str
    target: int
    kind: str  # "main" | "snapshots"
    agents: list[tuple[str, int]] = field(default_factory=list)  # (agent id, target)


def generate(
    root: Path, *, total_bytes: int, files: int, big_file_bytes: int, seed: int = 0
) -> TreeStats:
    """Write the tree under ``root/projects``; return its stats and expected totals.

    ``files`` counts .jsonl files (a sixth are subagent files); one main
    session gets ``big_file_bytes``; the others share the rest of
    ``total_bytes`` with a long-tailed size spread. Every file reaches its
    target, so the tree holds at least ``total_bytes``.
    """
    if files < 2:
        raise ValueError("files must be at least 2")
    if big_file_bytes >= total_bytes:
        raise ValueError("big_file_bytes must be less than total_bytes")
    started = time.perf_counter()
    gen = _Gen(seed)
    rng = gen.rng
    n_sub = int(files * SUBAGENT_SHARE)
    n_main = files - n_sub
    n_projects = max(3, min(len(PROJECT_NAMES), files // 40))
    cwds = [f"/home/dev/src/{name}" for name in PROJECT_NAMES[:n_projects]]
    project_weights = [1 / (i + 1) ** 0.7 for i in range(n_projects)]

    rest = total_bytes - big_file_bytes
    weights = [rng.lognormvariate(0, 1.3) for _ in range(files - 1)]
    for i in range(n_main - 1, files - 1):
        weights[i] *= 0.5  # subagent transcripts are shorter
    scale = rest / sum(weights)
    targets = [max(MIN_FILE_BYTES, int(w * scale) + 1) for w in weights]

    plans: list[_Plan] = []
    big_index = rng.randrange(n_main)
    small = iter(targets[: n_main - 1])
    for i in range(n_main):
        target = big_file_bytes if i == big_index else next(small)
        kind = "snapshots" if i != big_index and rng.random() < NON_ASSISTANT_SHARE else "main"
        cwd = rng.choices(cwds, project_weights)[0]
        plans.append(_Plan(cwd, gen.uuid(), target, kind))
    hosts = [plan for plan in plans if plan.kind == "main"]
    for target in targets[n_main - 1 :]:
        host = rng.choice(hosts)
        host.agents.append((f"a{gen.uid()[:16]}", target))

    total = largest = 0
    span_ms = SPAN_DAYS * 86_400_000
    epoch_ms = int(EPOCH.timestamp() * 1000)
    for plan in plans:
        project_dir = root / "projects" / escape_cwd(plan.cwd)
        duration = plan.target // 18_000 * 16_000  # ~16 s per ~18 KB turn
        start = epoch_ms + rng.randrange(max(1, span_ms - min(duration, span_ms - 1)))
        session = _Session(
            gen,
            project_dir / f"{plan.session_id}.jsonl",
            cwd=plan.cwd,
            session_id=plan.session_id,
            start_ms=start,
            agents=[a for a, _ in plan.agents],
        )
        if plan.kind == "snapshots":
            session.write_snapshots_only(plan.target)
        else:
            session.write_main(plan.target)
        size = session.close()
        total += size
        largest = max(largest, size)
        for agent_id, target in plan.agents:
            sub_dir = project_dir / plan.session_id / "subagents"
            agent_start = session.agent_starts.get(agent_id, start + rng.randint(1000, 600_000))
            sub = _Session(
                gen,
                sub_dir / f"agent-{agent_id}.jsonl",
                cwd=plan.cwd,
                session_id=plan.session_id,
                start_ms=agent_start,
                agent_id=agent_id,
            )
            sub.write_subagent(target)
            size = sub.close()
            total += size
            largest = max(largest, size)
            meta = {
                "agentType": "general-purpose",
                "description": f"Investigate the {rng.choice(WORDS)} module",
                "toolUseId": f"toolu_01{gen.uid()}",
                "model": sub.model,
                "finished": True,
            }
            (sub_dir / f"agent-{agent_id}.meta.json").write_text(_js(meta))

    return TreeStats(
        root=str(root),
        seed=seed,
        files=files,
        main_files=n_main,
        subagent_files=n_sub,
        projects=n_projects,
        bytes=total,
        largest_file_bytes=largest,
        lines=gen.lines,
        assistant_lines=gen.assistant_lines,
        first_timestamp=_iso(gen.first_ms or 0),
        last_timestamp=_iso(gen.last_ms),
        seconds=time.perf_counter() - started,
        by_model={m: t for m, t in gen.by_model.items() if t.responses},
        chars_by_type=dict(sorted(gen.chars_by_type.items(), key=lambda kv: -kv[1])),
    )


def describe(stats: TreeStats) -> str:
    t = stats.totals
    chars = sum(stats.chars_by_type.values()) or 1
    mix = ", ".join(f"{k} {v / chars:.0%}" for k, v in stats.chars_by_type.items())
    return "\n".join(
        [
            f"tree: {stats.bytes / MIB:,.1f} MiB in {stats.files:,} .jsonl files "
            f"({stats.main_files:,} sessions + {stats.subagent_files:,} subagent files, "
            f"{stats.projects} projects); largest file {stats.largest_file_bytes / MIB:,.1f} MiB; "
            f"generated in {stats.seconds:.1f} s",
            f"lines: {stats.lines:,} ({stats.assistant_lines:,} assistant lines = "
            f"{t.responses:,} responses); {stats.first_timestamp} .. {stats.last_timestamp}",
            f"mix by size: {mix}",
            f"expected tokens: input {t.input:,}, output {t.output:,}, "
            f"cache read {t.cache_read:,}, cache write {t.cache_creation:,} "
            f"(5m {t.cache_write_5m:,} + 1h {t.cache_write_1h:,}); "
            f"list-price cost ${stats.cost_usd:,.2f}",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="writes ROOT/projects (must not exist yet)")
    parser.add_argument("--size-mb", type=float, default=50.0, help="total MiB (default 50)")
    parser.add_argument("--files", type=int, default=100, help=".jsonl files (default 100)")
    parser.add_argument("--big-mb", type=float, default=10.0, help="largest file MiB (default 10)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if (args.root / "projects").exists():
        parser.error(f"{args.root / 'projects'} exists")
    stats = generate(
        args.root,
        total_bytes=int(args.size_mb * MIB),
        files=args.files,
        big_file_bytes=int(args.big_mb * MIB),
        seed=args.seed,
    )
    print(describe(stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
