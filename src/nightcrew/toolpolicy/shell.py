"""A small, conservative reader of shell command lines, for the tool policy.

It does not run or expand anything. It finds every simple command a line would
run: those joined by ``&& || ; & |`` and newlines, inside ``( … )`` and
``{ …; }``, inside ``$( … )``, backticks and ``<( … )``, and inside an
unquoted heredoc's substitutions. Quotes are removed from words; a word holding
a substitution keeps the marker :data:`DYNAMIC` where the substitution was, so
the rules know that part is only known when the line runs.

Whatever it cannot read with confidence (an unclosed quote or parenthesis, a
``case`` statement, a function definition) raises :class:`Unparsable`: the
policy then refuses the line rather than guess.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DYNAMIC = "\x00"
MAX_DEPTH = 8

_META = set(" \t\n;&|<>()")
RESERVED_PREFIX = frozenset({"if", "then", "else", "elif", "do", "while", "until", "!", "{"})
RESERVED_ALONE = frozenset({"fi", "done", "}", "esac"})


class Unparsable(Exception):
    """The line cannot be read with confidence; ``str(exc)`` says why."""


@dataclass(frozen=True)
class Redirect:
    op: str  # ">", ">>", "<", "&>", ">|", "<>", "<<<", "<<"
    target: str


@dataclass
class Simple:
    """One simple command: its words (quotes removed), redirections, and the
    commands its substitutions run."""

    words: list[str] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)
    nested: list[Pipeline] = field(default_factory=list)

    def empty(self) -> bool:
        return not self.words and not self.redirects and not self.nested


@dataclass
class Group:
    """``( … )`` (a subshell: its ``cd`` stays inside) or ``{ …; }``."""

    body: list[Pipeline]
    subshell: bool
    redirects: list[Redirect] = field(default_factory=list)


@dataclass
class Pipeline:
    stages: list[Simple | Group]


def parse(text: str, depth: int = 0) -> list[Pipeline]:
    """The pipelines of ``text`` in order; raises :class:`Unparsable`."""
    if depth > MAX_DEPTH:
        raise Unparsable("commands nested too deeply")
    parser = _Parser(text, depth)
    result = parser.parse_list(None)
    return result


class _Parser:
    def __init__(self, text: str, depth: int) -> None:
        self.s = text
        self.i = 0
        self.depth = depth
        self.pending_heredocs: list[tuple[str, bool, bool, Simple]] = []

    # ---- helpers ----------------------------------------------------------

    def peek(self, n: int = 1) -> str:
        return self.s[self.i : self.i + n]

    def at_end(self) -> bool:
        return self.i >= len(self.s)

    def skip_blanks(self) -> None:
        while not self.at_end():
            c = self.s[self.i]
            if c in " \t":
                self.i += 1
            elif self.peek(2) == "\\\n":
                self.i += 2
            else:
                return

    def sub(self, text: str) -> list[Pipeline]:
        return parse(text, self.depth + 1)

    # ---- lists, pipelines, commands --------------------------------------

    def parse_list(self, closer: str | None) -> list[Pipeline]:
        pipelines: list[Pipeline] = []
        stages: list[Simple | Group] = []
        cur = Simple()
        group: Group | None = None

        def end_command() -> None:
            nonlocal cur, group
            if group is not None:
                group.redirects.extend(cur.redirects)
                stages.append(group)
                if cur.words:
                    raise Unparsable("words after a closing parenthesis or brace")
                cur.redirects = []
                if cur.nested:
                    stages.append(Simple(nested=cur.nested))
            elif not cur.empty():
                stages.append(cur)
            cur, group = Simple(), None

        def end_pipeline() -> None:
            nonlocal stages
            end_command()
            if stages:
                pipelines.append(Pipeline(stages))
            stages = []

        while True:
            self.skip_blanks()
            if self.at_end():
                if closer is not None:
                    raise Unparsable(f"'{closer}' is never closed")
                end_pipeline()
                return pipelines
            c = self.s[self.i]
            if closer is not None and c == closer:
                self.i += 1
                end_pipeline()
                return pipelines
            if c == "\n":
                self.i += 1
                end_pipeline()
                self.read_heredocs()
            elif c == "#" and cur.empty() and group is None:
                while not self.at_end() and self.s[self.i] != "\n":
                    self.i += 1
            elif self.peek(2) in ("&&", "||"):
                self.i += 2
                end_pipeline()
            elif c == ";":
                if self.peek(2) == ";;":
                    raise Unparsable("a case statement")
                self.i += 1
                end_pipeline()
            elif self.peek(2) == "|&" or c == "|":
                self.i += 2 if self.peek(2) == "|&" else 1
                end_command()
            elif c == "&" and self.peek(2) != "&>":
                self.i += 1
                end_pipeline()
            elif c == "(":
                if self.peek(2) == "((":
                    self.skip_arithmetic(2)
                    continue
                if cur.words or group is not None:
                    raise Unparsable("a function definition or stray parenthesis")
                self.i += 1
                group = Group(self.parse_list(")"), subshell=True)
            elif c == ")":
                raise Unparsable("a ')' without its '('")
            elif c in "<>" or (c == "&" and self.peek(2) == "&>") or self.redirect_fd():
                if self.peek(2) in ("<(", ">("):
                    self.i += 2
                    cur.nested.extend(self.parse_list(")"))
                    cur.words.append(DYNAMIC)
                    continue
                self.read_redirect(cur)
            else:
                word = self.read_word(cur)
                if not cur.words and group is None and not cur.redirects:
                    if word in RESERVED_PREFIX or word in RESERVED_ALONE:
                        if word == "{":
                            group = Group(self.parse_list("}"), subshell=False)
                        continue
                    if word in ("case", "function", "select"):
                        raise Unparsable(f"a '{word}' statement")
                    if word == "for":
                        self.skip_for(cur)
                        continue
                if group is not None:
                    raise Unparsable("words after a closing parenthesis or brace")
                cur.words.append(word)

    def skip_for(self, cur: Simple) -> None:
        """``for x in a b c`` up to its ``;``/newline: the list is data, but its
        substitutions run."""
        while True:
            self.skip_blanks()
            if self.at_end() or self.s[self.i] in ";\n":
                return
            if self.s[self.i] in "&|<>()":
                raise Unparsable("an unusual for loop")
            self.read_word(cur)

    def redirect_fd(self) -> bool:
        j = self.i
        while j < len(self.s) and self.s[j].isdigit():
            j += 1
        return j > self.i and j < len(self.s) and self.s[j] in "<>"

    def read_redirect(self, cur: Simple) -> None:
        while self.s[self.i].isdigit():
            self.i += 1
        for op in ("<<<", "<<-", "<<", "&>>", "&>", ">>", ">|", ">&", "<&", "<>", ">", "<"):
            if self.s.startswith(op, self.i):
                self.i += len(op)
                break
        self.skip_blanks()
        if self.at_end() or self.s[self.i] in _META:
            raise Unparsable(f"a '{op}' without a target")
        if op in ("<<", "<<-"):
            start = self.i
            word = self.read_word(cur)
            quoted = any(q in self.s[start : self.i] for q in "'\"\\")
            self.pending_heredocs.append((word, quoted, op == "<<-", cur))
            cur.redirects.append(Redirect("<<", word))
            return
        target = self.read_word(cur)
        if op in (">&", "<&") and (target.isdigit() or target == "-"):
            return  # 2>&1: a descriptor, not a file
        cur.redirects.append(Redirect(">" if op == ">&" else op, target))

    def read_heredocs(self) -> None:
        for delimiter, quoted, strip_tabs, cmd in self.pending_heredocs:
            lines: list[str] = []
            while not self.at_end():
                end = self.s.find("\n", self.i)
                end = len(self.s) if end < 0 else end
                line = self.s[self.i : end]
                self.i = min(end + 1, len(self.s))
                if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                    break
                lines.append(line)
            if not quoted:
                body = "\n".join(lines)
                if "$(" in body or "`" in body:
                    inner = _Parser(body, self.depth + 1)
                    inner.read_double_quoted_body(cmd)
        self.pending_heredocs = []

    def skip_arithmetic(self, opened: int) -> None:
        """``((…))`` / ``$((…))``: arithmetic runs no command."""
        self.i += opened
        level = 2
        while level:
            if self.at_end():
                raise Unparsable("'((' is never closed")
            c = self.s[self.i]
            level += c == "("
            level -= c == ")"
            self.i += 1

    # ---- words ----------------------------------------------------------

    def read_word(self, cur: Simple) -> str:
        out: list[str] = []
        while not self.at_end():
            c = self.s[self.i]
            if c in _META:
                break
            if c == "\\":
                if self.peek(2) == "\\\n":
                    self.i += 2
                    continue
                out.append(self.s[self.i + 1 : self.i + 2])
                self.i += 2
            elif c == "'":
                end = self.s.find("'", self.i + 1)
                if end < 0:
                    raise Unparsable("a quote (') is never closed")
                out.append(self.s[self.i + 1 : end])
                self.i = end + 1
            elif self.peek(2) == "$'":
                out.append(self.read_ansi_c())
            elif c == '"':
                self.i += 1
                out.append(self.read_double_quoted(cur))
            elif c in {"$", "`"}:
                out.append(self.read_dollar(cur))
            else:
                out.append(c)
                self.i += 1
        return "".join(out)

    def read_ansi_c(self) -> str:
        self.i += 2
        out: list[str] = []
        while True:
            if self.at_end():
                raise Unparsable("a quote ($') is never closed")
            c = self.s[self.i]
            if c == "\\":
                out.append(self.s[self.i : self.i + 2])
                self.i += 2
            elif c == "'":
                self.i += 1
                return "".join(out)
            else:
                out.append(c)
                self.i += 1

    def read_double_quoted(self, cur: Simple) -> str:
        out: list[str] = []
        while True:
            if self.at_end():
                raise Unparsable('a quote (") is never closed')
            c = self.s[self.i]
            if c == '"':
                self.i += 1
                return "".join(out)
            if c == "\\":
                nxt = self.s[self.i + 1 : self.i + 2]
                out.append(nxt if nxt in '$`"\\\n' else "\\" + nxt)
                self.i += 2
            elif c in {"$", "`"}:
                out.append(self.read_dollar(cur))
            else:
                out.append(c)
                self.i += 1

    def read_double_quoted_body(self, cur: Simple) -> None:
        """An unquoted heredoc's body: only its substitutions matter."""
        while not self.at_end():
            c = self.s[self.i]
            if c == "\\":
                self.i += 2
            elif c in {"$", "`"}:
                self.read_dollar(cur)
            else:
                self.i += 1

    def read_dollar(self, cur: Simple) -> str:
        """``$(…)``, ``$((…))``, backticks, ``${…}`` or ``$NAME`` at ``self.i``."""
        if self.s[self.i] == "`":
            start = self.i + 1
            j = start
            while True:
                if j >= len(self.s):
                    raise Unparsable("a backtick is never closed")
                if self.s[j] == "\\":
                    j += 2
                    continue
                if self.s[j] == "`":
                    break
                j += 1
            inner = self.s[start:j].replace("\\`", "`").replace("\\\\", "\\")
            self.i = j + 1
            cur.nested.extend(self.sub(inner))
            return DYNAMIC
        if self.peek(3) == "$((":
            self.i += 1
            self.skip_arithmetic(2)
            return DYNAMIC
        if self.peek(2) == "$(":
            self.i += 2
            if self.depth + 1 > MAX_DEPTH:
                raise Unparsable("commands nested too deeply")
            reader = _Parser(self.s, self.depth + 1)
            reader.i = self.i
            cur.nested.extend(reader.parse_list(")"))
            self.i = reader.i
            return DYNAMIC
        if self.peek(2) == "${":
            end = self.s.find("}", self.i)
            if end < 0:
                raise Unparsable("a '${' is never closed")
            text = self.s[self.i : end + 1]
            if "$(" in text[2:] or "`" in text:
                raise Unparsable("a substitution inside ${…}")
            self.i = end + 1
            return text
        j = self.i + 1
        while j < len(self.s) and (self.s[j].isalnum() or self.s[j] == "_"):
            j += 1
        if j == self.i + 1 and j < len(self.s) and self.s[j] in "@*#?$!-0123456789":
            j += 1
        text = self.s[self.i : j]
        self.i = j
        return text
