"""The file paths a feature's text names, for keeping parallel lanes apart.

A feature's name, description, steps and acceptance commands are prose and
shell. Two features that name the same file will likely both change it, so a
build running lanes side by side keeps them apart (``lane_conflicts``). A path
wrongly found serialises work that could have run in parallel; a path missed
costs a merge conflict later. Both are cheap next to a wrong guess that looks
certain, so the rules below are narrow:

- a token is a path when its last part has a known file extension
  (``src/cart.py``, ``README.md``), is a known extensionless file
  (``Makefile``, ``.gitignore``), or it has directory separators and looks
  like a project directory (``src/cart/``, ``app/models/user``);
- backticks, quotes, brackets, markdown emphasis, ``./``, trailing
  punctuation, ``:line`` and ``::test`` suffixes and ``#anchors`` are dropped;
- URLs, absolute and home paths (``/usr/bin/env``, ``~/.bashrc``), paths out
  of the project (``../x``), version numbers (``1.2.3``), abbreviations
  (``e.g.``), method calls (``response.json()``), framework names
  (``Node.js``), English pairs (``and/or``, ``client/server``) and a
  top-level directory on its own (``tests/``, which a test run names in every
  feature) are not paths;
- the script an interpreter runs (``python manage.py test``) and, in an
  acceptance command, a project script run as a command
  (``./scripts/check.sh``, ``bin/rails test``) are how the feature is
  checked, not what it changes: left out too.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Iterator


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Extensions of files people write in projects (source, config, docs, data).
_EXTENSIONS = _words(
    """
    py pyi pyx ipynb js jsx mjs cjs ts tsx mts cts vue svelte astro json jsonc json5 md mdx
    rst txt adoc toml yaml yml ini cfg conf properties env rb erb rake gemspec go mod sum rs
    java kt kts scala groovy gradle swift c h cc cpp cxx hpp hh cs fs vb php html htm
    css scss sass less styl sql prisma graphql gql proto sh bash zsh fish ps1 bat lock xml
    xsd csv tsv svg ex exs erl hrl hs elm ml mli clj cljs dart lua pl pm r jl nim zig tf db
    tfvars hcl nix tex bib cmake mk dockerfile j2 jinja jinja2 hbs ejs pug liquid twig tmpl
    tpl haml slim wasm sol cu mdc rmd qmd sqlite sqlite3
    """
)
# Files without an extension that projects keep (matched as written).
_BARE_NAMES = _words(
    """
    Makefile makefile GNUmakefile Dockerfile Containerfile Gemfile Rakefile Procfile
    Justfile justfile Pipfile Brewfile Vagrantfile Jenkinsfile Caddyfile Podfile Fastfile
    """
)
# Dotfiles, by the part before any further dot (``.env.example`` counts).
_DOTFILES = _words(
    """
    .gitignore .gitattributes .gitmodules .dockerignore .editorconfig .env .npmrc .nvmrc
    .prettierrc .prettierignore .eslintrc .eslintignore .babelrc .browserslistrc
    .python-version .ruby-version .node-version .tool-versions .flake8 .pylintrc
    .coveragerc .rspec .rubocop .stylelintrc .swcrc .envrc
    """
)
# First parts of a two-part path without an extension that are project
# directories (``src/cart``), not English (``and/or``, ``client/server``).
_ROOTS = _words(
    """
    src lib app apps test tests spec specs docs doc pkg cmd internal config configs public
    static assets components pages packages crates include migrations db templates views
    models controllers routes examples bench benches tools web frontend backend api
    services utils styles fixtures e2e infra deploy charts k8s terraform plugins modules
    handlers middleware schemas store stores hooks resources .github
    """
)
# Never the project's own work: environments, dependencies, git, our state.
_IGNORED_ROOTS = frozenset(
    {".venv", "venv", "node_modules", ".git", "__pycache__", ".nightcrew", ".tox", ".mypy_cache"}
)
# ``Next.js`` is a framework, ``next.config.js`` a file.
_FRAMEWORKS = _words(
    """
    node vue next nuxt express react preact d3 three chart ember backbone angular alpine
    moment p5 nest solid socket ext handlebars mustache knockout meteor gatsby remix
    """
)
# A program that runs the next word as a script (``python3.12``, ``.venv/bin/python``).
_INTERPRETER = re.compile(
    r"(?:python|pypy|py|node|nodejs|deno|bun|ruby|perl|php|bash|sh|zsh|lua|rscript|elixir|"
    r"ts-node|tsx|go)[\d.]*",
    re.IGNORECASE,
)
# Options after which the interpreter's next word is code or a module, not a file.
_INLINE = frozenset({"-m", "-c", "-e", "--eval", "-r", "--require"})
# Where a project keeps what it runs as a command.
_EXEC_ROOTS = frozenset({"bin", "script", "scripts"})

_TOKEN = re.compile(r"[^\s,;()\[\]{}<>\"'`|&=“”‘’—–]+")
_SEGMENT = re.compile(r"[\w.@+-]+")
_NUMERIC = re.compile(r"[\d.]+")
_COMMAND_BREAK = re.compile(r"&&|\|\||[;|\n]|\$\(")


def named_files(*texts: str, commands: Iterable[str] = ()) -> frozenset[str]:
    """The relative paths ``texts`` and shell ``commands`` name, normalised
    (``src/cart.py``; a directory keeps its trailing ``/``: ``src/cart/``).
    See the module's docstring for what counts; a project script at the start
    of a command is known as run only in ``commands`` (in prose,
    ``scripts/seed.py fills the db`` names a file to write)."""
    found: set[str] = set()
    for text in texts:
        found.update(_paths(text, command=False))
    for text in commands:
        found.update(_paths(text, command=True))
    return frozenset(found)


def clean_path(path: str) -> str | None:
    """A path given as a path (a feature's ``files`` hint, a file an attempt
    changed), normalised like :func:`named_files`'s but not judged by its
    shape: None only when it is not a relative path inside the project."""
    text = path.strip().strip("`'\"").replace("\\", "/")
    if not text or text.startswith(("/", "~", "$")):
        return None
    normal = posixpath.normpath(text)
    if normal in (".", "..") or normal.startswith("../"):
        return None
    return normal + "/" if text.endswith("/") else normal


def _paths(text: str, *, command: bool) -> Iterator[str]:
    tokens = list(_TOKEN.finditer(text))
    skip = _run_scripts(text, tokens, command=command)
    for index, match in enumerate(tokens):
        if index in skip or text.startswith("(", match.end()):
            continue  # a script being run; a call such as response.json()
        path = _path(match.group())
        if path is not None:
            yield path


def _run_scripts(text: str, tokens: list[re.Match[str]], *, command: bool) -> set[int]:
    """The indexes of tokens that are run rather than changed: the script after
    an interpreter (its options skipped) and, in a ``command``, a project
    script at the start of one of its commands."""
    runs: set[int] = set()
    after_interpreter = False
    for index, match in enumerate(tokens):
        word = match.group()
        gap = text[tokens[index - 1].end() : match.start()] if index else "\n"
        if command and _COMMAND_BREAK.search(gap):
            after_interpreter = False
            if _looks_run(word):
                runs.add(index)
                continue
        if after_interpreter:
            if word in _INLINE:
                after_interpreter = False
            elif word == "run" or word.startswith("-"):
                pass  # ``deno run``, ``go run``, ``python -u``: the script comes next
            else:
                runs.add(index)
                after_interpreter = False
            continue
        after_interpreter = _INTERPRETER.fullmatch(word.rsplit("/", 1)[-1]) is not None
    return runs


def _looks_run(word: str) -> bool:
    """A command's first word that is a project script: ``./check.sh``,
    ``bin/rails``, ``scripts/test``."""
    if word.startswith("./"):
        return True
    path = word.replace("\\", "/")
    return ("/" in path and path.split("/", 1)[0] in _EXEC_ROOTS) or path.endswith(".sh")


def _path(token: str) -> str | None:
    token = token.strip("*").replace("\\", "/")  # markdown emphasis; Windows separators
    token = token.rstrip(".,:;!?")
    if "://" in token or token.startswith(("www.", "mailto:")):
        return None
    token = re.split(r"[:#?]", token, maxsplit=1)[0]  # a line, a test id, an anchor, a query
    if "*" in token:  # a glob names the directory before its first wildcard
        head = token.split("*", 1)[0]
        token = head[: head.rfind("/") + 1]
    return _normal(token)


def _normal(token: str) -> str | None:
    if not token or token.startswith(("/", "~", "$", "-", "%")) or "@" in token.split("/", 1)[0]:
        return None
    is_dir, explicit = token.endswith("/"), token.startswith("./")
    path = posixpath.normpath(token)
    parts = path.split("/")
    if path in (".", "..") or parts[0] == ".." or parts[0] in _IGNORED_ROOTS:
        return None
    if not all(_SEGMENT.fullmatch(p) and not _NUMERIC.fullmatch(p) for p in parts):
        return None
    if is_dir:
        return path + "/" if len(parts) > 1 else None  # ``tests/`` names half the project
    if _is_file_name(parts[-1], alone=len(parts) == 1):
        return path
    if len(parts) > 1 and (explicit or any(p.lower() in _ROOTS for p in parts[:-1])):
        return path  # ``src/cart``, ``app/models/user``; not ``and/or``
    return None


def _is_file_name(name: str, *, alone: bool) -> bool:
    if name in _BARE_NAMES:
        return True
    if name.startswith("."):
        return "." + name[1:].split(".", 1)[0] in _DOTFILES or (
            "." in name[1:] and name.rsplit(".", 1)[1].lower() in _EXTENSIONS
        )
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or ext.lower() not in _EXTENSIONS:
        return False
    return not (alone and ext.lower() == "js" and stem.lower() in _FRAMEWORKS)
