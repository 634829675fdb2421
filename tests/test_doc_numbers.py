"""Every measured number in docs/ and README.md cites one results file and one JSON
pointer, and equals that value at the precision printed (issues #14 and #27).

**Regions.** An HTML comment on a line of its own, outside code blocks and with blank
lines around it,

    <!-- numbers: bench/results/fidelity/latest.json bench/results/sampling_cost/latest.json -->

opens a region: it covers everything up to the next heading, the next ``numbers:``
comment, or ``<!-- numbers: end -->``, code blocks included (the comment may continue
over several lines). It cites JSON files only (paths relative to the repository root);
the first one is the region's default file.

**Citations.** Every number that a region quotes as a measurement carries a citation
right after it, with no space between: ``0.567<!--@#/rows/3/c2st_auc-->`` points into
the region's first file with a JSON pointer (RFC 6901, in its URI-fragment form:
``~1`` for ``/``, ``~0`` for ``~``, ``%20`` for a space);
``0.567<!--@bench/results/x/latest.json#/a/b-->`` into another file. Both render as
nothing on GitHub and in Sphinx (MyST passes inline HTML comments through). A code
block cannot hold a comment, so the numbers of a code block's output are cited by a
list on the line right after its closing fence, one reference per number in reading
order: ``<!--@ #/stdout/0/0 #/stdout/0/1 -->``. A pointer that reaches a string (a
printed line stored in the results) goes on with one more token, the index of the
number in that string (0 = its first number, in reading order).

**The check.** The value ``v`` a citation points to, in one of the allowed forms, must
print as the number does: as is; for a percentage ``v × 100`` or ``|v − 1| × 100`` (a
width ratio of 1.046 is "+4.6%"); for a factor ("13×", "13x") ``v`` or ``1 / v`` (a rate
ratio of 0.075 is "13× slower"). The sign is not compared (a gain of −0.001 is written
"loses 0.001"). "Prints as" means ``f"{x:.{d}f}"`` with the ``d`` decimals shown equals
the digits shown (of the mantissa, for ``7.8e4``): a changed last digit fails, and
``test_a_changed_last_digit_fails`` shows it for every cited number of every page.

Measured are decimals (0.580, +0.04, −0.24, 7.8e4), percentages (12%, 0.9%) and
factors written "13×"; not measured are other integers (sample sizes, seeds, epochs,
counts), numbers after a comparison sign (``≤ 0.60``, ``> 1``: targets) and the fixed
phrases of ``DEFINITIONS`` (software versions, the 16-84% quantiles, the 1% background
working point...). An integer may carry a citation too; then it is checked.

**Outside regions** no page may quote a measured-looking number beside a word that
marks a measurement (``MARKERS``: ±, C2ST, AUC, MeV, events/s, W1, amplification,
slower, loss, "12.3 s"...) unless it cites its file in full. In prose a marker anywhere
in the paragraph (or list) counts, in a table one in its header row too, in a code
block's output only one on the same line. Python and shell code blocks and the command
lines of console blocks are not read. The few exceptions are listed, with the reason,
in ``EXEMPTIONS``; one that no longer matches anything fails the test.

Pure text processing: no network, a few seconds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
#: docs/conf.py's exclude_patterns: not part of the built documentation
EXCLUDED_DIRS = ("_build", "dev")


def pages() -> list[Path]:
    found = [
        p
        for p in sorted(DOCS.rglob("*.md"))
        if not any(part in EXCLUDED_DIRS for part in p.relative_to(DOCS).parts)
    ]
    return [*found, ROOT / "README.md"]


#: a tag (it may continue over several lines); its argument is "end" or one or more
#: paths relative to the repository root
TAG = re.compile(r"^\s*<!--\s*numbers:\s*(?P<args>.*?)\s*-->\s*$", re.DOTALL)
TAG_START = re.compile(r"^\s*<!--\s*numbers:")
HEADING = re.compile(r"^#{1,6}\s")
FENCE = re.compile(r"^\s*(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")
#: code blocks whose contents are code, not output
CODE_LANGS = {"python", "py", "bash", "sh", "shell", "toml", "yaml", "json", "ini"}

#: a citation right after a number: ``<!--@FILE#POINTER-->`` (FILE empty: the region's
#: first file)
CITE = re.compile(r"<!--@(?P<file>[^\s#>]*)#(?P<pointer>[^\s>]*)-->")
#: the citations of a code block's numbers, on the line after its closing fence
CITE_LIST = re.compile(r"^\s*<!--@\s+(?P<refs>(?:[^\s#>]*#[^\s>]*\s+)*[^\s#>]*#[^\s>]*)\s*-->\s*$")

#: a number: optional sign (also U+2212), digits with optional thousands commas, an
#: optional fraction and exponent; then optionally a percent or a times sign
NUMBER = re.compile(
    r"(?<![\w./])"
    r"(?P<sign>[+\-−])?"
    r"(?P<int>\d{1,3}(?:,\d{3})+|\d+)"
    r"(?:\.(?P<frac>\d+))?"
    r"(?:[eE](?P<exp>[+\-−]?\d+))?"
    r"(?P<suffix>\s?%|\s?×|x(?![\w]))?"
    r"(?![\w]|\.\d)"
)
#: a number after one of these is a threshold or a target, not a measurement
COMPARISON = re.compile(r"(?:[≤≥<>=]|<=|>=)\s*$")

#: fixed phrases whose numbers are definitions, not measurements (blanked before reading)
DEFINITIONS = [
    # software versions ("vaeaug 0.1", "torch 2.13.0+cpu", "Python 3.11.7")
    (
        re.compile(
            r"\b(?:vaeaug|torch|PyTorch|Python|zuko|ctgan|scikit-learn|uproot|coffea|"
            r"myst-parser|sphinx|pythia8mc|awkward|dask)\s*(?:==|≥|>=)?\s*\d+(?:\.\d+)+"
        ),
        "software version",
    ),
    # the within-floor rule of the C2ST
    (re.compile(r"max\(floor AUC, 0\.5\)"), "definition of the C2ST floor rule"),
    # the quantiles of the robust half-width
    (re.compile(r"16\s*[–-]\s*84\s*%"), "quantiles that define the half-width"),
    # the working points of the classifier study
    (
        re.compile(r"\b(?:0\.1|1)\s*%(?:\s+(?:and|or)\s+(?:0\.1|1)\s*%)?\s*(?:bkg|background)"),
        "classifier working point",
    ),
    (re.compile(r"\b99\s*%\s*rejection"), "classifier working point"),
    # the input resolution of the Pythia samples
    (
        re.compile(r"\b0\.5\s*%\s*(?:momentum\s+)?(?:resolution|\))|smeared by 0\.5%"),
        "the samples' momentum smearing",
    ),
    (re.compile(r"1\s*\+\s*0\.005\s*g"), "the smearing of the classifier study's control"),
]

#: words that mark a paragraph's or a table's numbers as measurements
MARKERS = re.compile(
    r"±|C2ST|\bAUC\b|\bMeV\b|events/s|ev/s|candidates/s|\bW1\b|Δρ|amplification|"
    r"sig\. eff|efficiency|slower|faster|speed-?up|throughput|peak RSS|\bloss\b|\d s\b",
    re.IGNORECASE,
)

#: untagged measured-looking text allowed anyway: (page, regex on the line, reason)
EXEMPTIONS: list[tuple[str, re.Pattern[str], str]] = [
    (
        "docs/guide/validation.md",
        re.compile(r"an AUC of 0\.55 can be acceptable"),
        "an illustrative value in a piece of advice, not a measurement",
    ),
    (
        "docs/quickstart.md",
        re.compile(r"in 127\.8 s \(30 epochs, best val loss 13\.354\)|30 epochs, 127\.54 s on cpu"),
        "console output of vaeaug 0.1 (the page says so), shown as an example of what "
        "`train` and `info` print; no quality or speed claim rests on it",
    ),
    (
        "docs/guide/reproducibility.md",
        re.compile(r"best validation loss \(13\.354\)|30 epochs, 127\.54 s on cpu"),
        "an example of a reproducibility check (two trainings, one result), recorded with "
        "vaeaug 0.1; the value itself claims nothing",
    ),
    (
        "docs/guide/model-files.md",
        re.compile(r"10 epochs, 37\.58 s on cpu"),
        "example output of `vaeaug info` for a 10-epoch toy model; not a speed claim",
    ),
    (
        "docs/examples.md",
        re.compile(r"softer in median pT|fixed shares of events|about 48%, 30% and 22%"),
        "the settings of the Pythia recipes and the sample composition they give, "
        "stated by examples/decays_pythia.py itself (its docstrings); not benchmark results",
    ),
]


# --------------------------------------------------------------------------- numbers


@dataclass(frozen=True)
class Token:
    text: str  # as written, sign and suffix included
    digits: str  # the printed mantissa: no sign, no thousands commas, no exponent
    decimals: int
    exponent: int
    percent: bool
    times: bool
    start: int = 0  # span in the text read
    end: int = 0

    @property
    def value(self) -> float:
        return float(self.digits) * 10.0**self.exponent

    def describe(self) -> str:
        what = "a percentage" if self.percent else "a factor" if self.times else "a number"
        return f"{what} {self.text!r}"


def mask_definitions(text: str) -> str:
    """``text`` with the phrases of ``DEFINITIONS`` blanked (same length, line breaks kept)."""
    for pattern, _ in DEFINITIONS:
        text = pattern.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
    return text


def _token(m: re.Match[str]) -> Token:
    raw_suffix = m["suffix"] or ""
    suffix = raw_suffix.strip()
    frac, exp = m["frac"], m["exp"]
    return Token(
        text=m.group(0).strip(),
        digits=m["int"].replace(",", "") + ("." + frac if frac else ""),
        decimals=len(frac) if frac else 0,
        exponent=int(exp.replace("−", "-")) if exp else 0,
        percent=suffix == "%",
        times=suffix in ("×", "x"),
        start=m.start(),
        end=m.start() + len(m.group(0).rstrip()),
    )


def is_measured(m: re.Match[str], text: str) -> bool:
    """Whether a number is one the docs must source: a decimal, a percentage or a
    factor written "13×" ("20 × N_sig" is a multiplication), not after a comparison."""
    raw_suffix = m["suffix"] or ""
    suffix = raw_suffix.strip()
    percent, times = suffix == "%", suffix in ("×", "x")
    if m["frac"] is None and not percent and not (times and raw_suffix == suffix):
        return False
    return not COMPARISON.search(text[: m.start()])


def number_tokens(text: str, *, checked_only: bool = True) -> list[Token]:
    """The numbers in ``text``; with ``checked_only`` only those the docs must source.

    ``text`` must have gone through ``mask_definitions`` already when it comes from a page.
    """
    return [_token(m) for m in NUMBER.finditer(text) if not checked_only or is_measured(m, text)]


def prints_as(value: float, token: Token) -> bool:
    """Whether ``|value|`` printed with the token's decimals (and exponent) gives its digits."""
    x = abs(value) / 10.0**token.exponent
    return f"{x:.{token.decimals}f}" == token.digits


def forms(value: float, token: Token) -> list[float]:
    """The allowed forms of a value for a token: as is; ×100 or |v − 1|×100 for a
    percentage; 1/v for a factor."""
    out = [value]
    if token.percent:
        out += [value * 100, abs(value - 1) * 100]
    if token.times and value:
        out.append(1 / value)
    return out


def matches(value: float, token: Token) -> bool:
    return any(prints_as(v, token) for v in forms(value, token))


def mutated(token: Token) -> str:
    """The token's text with its last digit raised by one unit (0.567 -> 0.568, 0.99 ->
    1.00, 12% -> 13%, 7.8e4 -> 7.9e4)."""
    m = NUMBER.fullmatch(token.text)
    assert m, token.text
    step = Decimal(1).scaleb(-token.decimals)
    new = f"{Decimal(token.digits) + step:.{token.decimals}f}"
    if "," in m["int"]:
        whole, _, frac = new.partition(".")
        new = f"{int(whole):,}" + ("." + frac if frac else "")
    lo, hi = m.start("int"), m.end("frac") if m["frac"] is not None else m.end("int")
    return token.text[:lo] + new + token.text[hi:]


# --------------------------------------------------------------------------- JSON pointers


class PointerError(ValueError):
    pass


@cache
def load_json(rel: str) -> Any:
    return json.loads((ROOT / rel).read_text(encoding="utf-8"))


def resolve(doc: Any, pointer: str) -> float:
    """The number a pointer (RFC 6901, URI-fragment form) selects in ``doc``. A pointer
    that reaches a string goes on with the index of a number in it."""
    if not pointer.startswith("/"):
        raise PointerError(f"a JSON pointer starts with '/': {pointer!r}")
    node = doc
    parts = [unquote(p).replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/")]
    for i, part in enumerate(parts):
        if isinstance(node, dict):
            if part not in node:
                raise PointerError(f"no key {part!r} at /{'/'.join(parts[:i])}")
            node = node[part]
        elif isinstance(node, (list, str)):
            if not re.fullmatch(r"0|[1-9]\d*", part):
                raise PointerError(f"{part!r} is not an index at /{'/'.join(parts[:i])}")
            items = node if isinstance(node, list) else number_tokens(node, checked_only=False)
            if int(part) >= len(items):
                raise PointerError(f"index {part} out of range at /{'/'.join(parts[:i])}")
            node = items[int(part)]
        else:
            raise PointerError(f"/{'/'.join(parts[:i])} is a {type(node).__name__}, not a "
                               "container")  # fmt: skip
    if isinstance(node, Token):
        return float(node.digits) * 10.0**node.exponent
    if isinstance(node, bool) or not isinstance(node, (int, float)):
        what = "a string (add the index of the number in it)" if isinstance(node, str) else (
            f"a {type(node).__name__}")  # fmt: skip
        raise PointerError(f"the pointer selects {what}, not a number")
    return float(node)


# --------------------------------------------------------------------------- pages


@dataclass
class Ref:
    file: str  # "" for the region's first file
    pointer: str

    @classmethod
    def parse(cls, ref: str) -> Ref:
        file, _, pointer = ref.partition("#")
        return cls(file, pointer)


@dataclass
class Line:
    page: str
    number: int
    text: str  # what is read: as long as the raw line, code, link targets and citations blanked
    files: list[str] | None  # the cited files of the region, None outside a region
    tag_line: int | None  # the line of the tag
    block: int  # paragraph, table or code block: lines of one block share this id
    header: str  # the header row of the table the line belongs to, else ""
    fenced: bool  # in a code block (output): its markers count line by line
    cites: dict[int, Ref] = field(default_factory=dict)  # by the column a citation starts at


@dataclass
class Cited:
    """A number with its citation, and what the check found (``problem`` None: it matches)."""

    page: str
    line: int
    token: Token
    file: str
    pointer: str
    problem: str | None

    def where(self) -> str:
        return f"{self.page}:{self.line}:{self.token.start + 1}"


INLINE_CODE = re.compile(r"`[^`]*`")
LINK_TARGET = re.compile(r"(?<=\])\([^)]*\)")
ROLE = re.compile(r"\{\w+\}")


def _blank(pattern: re.Pattern[str], text: str) -> str:
    return pattern.sub(lambda m: " " * len(m.group(0)), text)


def read_page(
    rel: str, source: str
) -> tuple[list[Line], list[str], dict[int, tuple[int, list[Ref]]]]:
    """The lines to read of a page, the problems of its tags, and the citation lists of
    its code blocks (block id -> (line of the list, references))."""
    lines: list[Line] = []
    problems: list[str] = []
    block_refs: dict[int, tuple[int, list[Ref]]] = {}
    raw_lines = source.splitlines()
    masked_lines = mask_definitions("\n".join(raw_lines)).split("\n")
    files: list[str] | None = None
    tag_line: int | None = None
    fence: str | None = None
    lang = ""
    block = 0
    header = ""
    previous_blank = True
    continuation = False
    closed_block: int | None = None  # the code block that closed on the line before
    pending: tuple[int, str] | None = None  # a tag continued on the next lines
    for n, raw in enumerate(raw_lines, start=1):
        masked = masked_lines[n - 1]
        after_fence, closed_block = closed_block, None
        if pending is not None:
            pending = (pending[0], pending[1] + "\n" + raw)
            if "-->" not in raw:
                continue
            n, raw = pending
            pending = None
        elif fence is None and TAG_START.match(raw) and "-->" not in raw:
            pending = (n, raw)
            continue
        if fence is not None:
            if raw.strip().startswith(fence) and raw.strip().strip(fence[0]) == "":
                fence = None
                closed_block = block
                block += 1
                continue
            if lang in CODE_LANGS:
                continue
            if lang == "console" and (raw.lstrip().startswith("$") or continuation):
                continuation = raw.rstrip().endswith("\\")
                continue  # a command, not its output
            text = masked
        else:
            m = CITE_LIST.match(raw)
            if m:
                if after_fence is None:
                    problems.append(f"{rel}:{n}: a citation list must follow a code block's "
                                    "closing fence directly")  # fmt: skip
                else:
                    block_refs[after_fence] = (n, [Ref.parse(r) for r in m["refs"].split()])
                continue
            m = FENCE.match(raw)
            if m:
                fence, lang = m["fence"], m["lang"].lower()
                continuation = False
                block += 1
                header = ""
                continue
            if HEADING.match(raw):
                files, tag_line = None, None
                block += 1
                continue
            m = TAG.match(raw)
            if m:
                args = m["args"].split()
                block += 1
                if args == ["end"]:
                    files, tag_line = None, None
                    continue
                files, tag_line = args, n
                for a in args:
                    if not a.endswith(".json"):
                        problems.append(f"{rel}:{n}: the numbers tag cites {a}: JSON files only")
                    elif not (ROOT / a).is_file():
                        problems.append(
                            f"{rel}:{n}: the numbers tag cites {a}, which does not exist"
                        )
                continue
            if raw.lstrip().startswith("<!--") and "numbers" in raw:
                problems.append(f"{rel}:{n}: malformed numbers tag {raw.strip()!r}")
            text = _blank(INLINE_CODE, masked)
            text = _blank(LINK_TARGET, text)
            text = _blank(ROLE, text)
        cites = {}
        for m in CITE.finditer(raw):
            cites[m.start()] = Ref(m["file"], m["pointer"])
        text = _blank(CITE, text) if cites else text
        if not raw.strip():
            previous_blank = True
            header = ""
            if fence is None:
                block += 1
            continue
        if raw.lstrip().startswith("|"):
            if previous_blank or not header:
                header = raw
        else:
            header = ""
        previous_blank = False
        lines.append(Line(rel, n, text, files, tag_line, block, header, fence is not None, cites))
    if pending is not None:
        problems.append(f"{rel}:{pending[0]}: numbers tag without its closing -->")
    return lines, problems, block_refs


Loader = Callable[[str], Any]


def _check(line: Line, token: Token, ref: Ref, load: Loader) -> Cited:
    file = ref.file or (line.files[0] if line.files else "")
    if not file:
        problem = "cites '#...' outside a numbers region: name the file"
    elif not file.endswith(".json"):
        problem = f"cites {file}: JSON files only"
    else:
        try:
            value = resolve(load(file), ref.pointer)
        except FileNotFoundError:
            problem = f"cites {file}, which does not exist"
        except PointerError as e:
            problem = f"{file}#{ref.pointer} does not resolve: {e}"
        else:
            problem = None if matches(value, token) else (
                f"{token.describe()} is not {file}#{ref.pointer} = {value!r} at the precision "
                "printed (forms allowed: " + ", ".join(f"{v:.6g}" for v in forms(value, token))
                + ")")  # fmt: skip
    return Cited(line.page, line.number, token, file, ref.pointer, problem)


def check_page(rel: str, source: str, load: Loader = load_json) -> tuple[list[Cited], list[str]]:
    """Every citation of a page, checked, and the page's other problems: tags, region
    numbers without a citation, citations that follow no number."""
    lines, problems, block_refs = read_page(rel, source)
    cited: list[Cited] = []
    fenced_tokens: dict[int, list[tuple[Line, Token]]] = {}
    for line in lines:
        all_tokens = {m.end(): m for m in NUMBER.finditer(line.text)}
        for col, ref in line.cites.items():
            # the citation follows the number directly (its suffix included)
            m = all_tokens.get(col) or next(
                (m for m in all_tokens.values() if m.start() + len(m.group(0).rstrip()) == col),
                None,
            )
            if m is None:
                problems.append(f"{line.page}:{line.number}:{col + 1}: a citation that "
                                "follows no number")  # fmt: skip
                continue
            cited.append(_check(line, _token(m), ref, load))
        if line.files is None:
            continue
        for token in number_tokens(line.text):
            if line.fenced:
                fenced_tokens.setdefault(line.block, []).append((line, token))
            elif token.end not in line.cites:
                problems.append(
                    f"{line.page}:{line.number}:{token.start + 1}: {token.describe()} in the "
                    f"region of line {line.tag_line} has no citation <!--@#/pointer-->"
                )
    for blk, (n, refs) in block_refs.items():
        tokens = fenced_tokens.pop(blk, [])
        if len(tokens) != len(refs):
            problems.append(f"{rel}:{n}: {len(refs)} citation(s) for the {len(tokens)} "
                            "measured number(s) of the code block above")  # fmt: skip
        for (line, token), ref in zip(tokens, refs):
            cited.append(_check(line, token, ref, load))
    for tokens in fenced_tokens.values():
        line, token = tokens[0]
        problems.append(
            f"{line.page}:{line.number}:{token.start + 1}: a code block in the region of line "
            f"{line.tag_line} has {len(tokens)} measured number(s) and no citation list "
            "<!--@ #/a #/b ... --> after its closing fence"
        )
    return cited, problems


@cache
def page_results() -> dict[str, tuple[str, list[Cited], list[str]]]:
    out = {}
    for p in pages():
        rel = p.relative_to(ROOT).as_posix()
        source = p.read_text(encoding="utf-8")
        out[rel] = (source, *check_page(rel, source))
    return out


# --------------------------------------------------------------------------- the tests


def test_tags_and_citations_are_well_formed():
    problems = [p for _, _, ps in page_results().values() for p in ps]
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems)


def test_cited_numbers_match_their_pointers():
    cited = [c for _, cs, _ in page_results().values() for c in cs]
    assert cited, "no page cites a number"
    failures = [f"{c.where()}: {c.problem}" for c in cited if c.problem]
    assert not failures, f"{len(failures)} cited number(s) do not match:\n" + "\n".join(failures)


def test_a_changed_last_digit_fails():
    """Issue #27: for every cited number of every page, a copy of the page with that
    number's last digit raised by one unit fails on that number."""
    survivors, count = [], 0
    for rel, (source, cited, _) in page_results().items():
        raw_lines = source.splitlines(keepends=True)
        for c in cited:
            count += 1
            i = c.line - 1
            raw = raw_lines[i]
            assert raw[c.token.start : c.token.start + len(c.token.text)] == c.token.text
            changed = mutated(c.token)
            copy = raw_lines.copy()
            copy[i] = raw[: c.token.start] + changed + raw[c.token.start + len(c.token.text) :]
            again, _ = check_page(rel, "".join(copy))
            hit = [d for d in again if d.line == c.line and d.token.start == c.token.start]
            assert hit, f"{c.where()}: the changed number is no longer read"
            if hit[0].problem is None:
                survivors.append(f"{c.where()}: {c.token.text} -> {changed} still matches "
                                 f"{c.file}#{c.pointer}")  # fmt: skip
    assert count, "no cited numbers"
    assert not survivors, "changed numbers that pass:\n" + "\n".join(survivors)


def test_measured_numbers_outside_regions_are_tagged():
    blocks: dict[tuple[str, int], list[Line]] = {}
    for rel, (source, _, _) in page_results().items():
        for line in read_page(rel, source)[0]:
            blocks.setdefault((line.page, line.block), []).append(line)
    failures = []
    used = set()
    for block in blocks.values():
        block_marked = any(MARKERS.search(line.text) for line in block)
        for line in block:
            if line.files:
                continue
            marked = (
                bool(MARKERS.search(line.text))
                or (block_marked and not line.fenced)
                or bool(MARKERS.search(line.header))
            )
            tokens = [t for t in number_tokens(line.text) if t.end not in line.cites]
            if not (marked and tokens):
                continue
            exempt = [
                i for i, (page, pattern, _) in enumerate(EXEMPTIONS)
                if page == line.page and pattern.search(line.text)
            ]  # fmt: skip
            if exempt:
                used.update(exempt)
                continue
            failures.append(
                f"{line.page}:{line.number}: {', '.join(t.text for t in tokens)} look(s) measured "
                f"but no <!-- numbers: FILE... --> tag says where from: {line.text.strip()[:120]!r}"
            )
    assert not failures, f"{len(failures)} untagged measured-looking line(s):\n" + "\n".join(
        failures
    )
    stale = [f"{EXEMPTIONS[i][0]}: {EXEMPTIONS[i][1].pattern}" for i in range(len(EXEMPTIONS))
             if i not in used]  # fmt: skip
    assert not stale, "exemptions that match nothing any more (remove them):\n" + "\n".join(stale)


# --------------------------------------------------------------------------- unit tests


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "C2ST 0.580 (0.500), +0.04, 1.010 and −0.24",
            ["0.580", "0.500", "+0.04", "1.010", "−0.24"],
        ),
        ("12% and 0.075× and 7.8e4 events/s, 13× slower", ["12%", "0.075×", "7.8e4", "13×"]),
        ("seed 3, N = 10,000, 20 × N_sig, pi1_eta, H100, v2, x20, 1e-4, 5/24", []),
        ("vaeaug 0.1 with torch 2.13.0+cpu on Python 3.11.7", []),
        ("C2ST ≤ 0.60 on every seed, amplification > 1", []),
        ("16–84% half-width at 1%\nbackground", []),
        ("0.69-0.73 and 1.4-2.3", ["0.69", "0.73", "1.4", "2.3"]),
    ],
)
def test_number_reader(text, expected):
    assert [t.text for t in number_tokens(mask_definitions(text))] == expected


@pytest.mark.parametrize(
    ("text", "value", "found"),
    [
        # printed with the decimals shown
        ("0.581", 0.5808885, True),
        ("0.58", 0.5808885, True),
        ("0.6", 0.5808885, True),
        ("0.582", 0.5808885, False),
        ("0.580", 0.5808885, False),
        # the sign is not compared
        ("−1.04", 1.0435, True),
        ("+1.04", -1.0435, True),
        # a percentage: as is, ×100 or (ratio − 1) ×100
        ("0.60%", 0.0059607, True),
        ("4.4%", 1.0435, True),
        ("4.3%", 1.0435, False),
        ("104.35%", 1.0435, True),
        ("0.57%", 0.0059607, False),
        # scientific notation: the mantissa
        ("2.45e3", 2451.9, True),
        ("2.46e3", 2451.9, False),
        # thousands commas
        ("2,452", 2451.9, True),
        ("2,451", 2451.9, False),
        ("2,451.9", 2451.9, True),
        # a factor: as is or its inverse
        ("0.075×", 0.0751, True),
        ("13×", 0.0751, True),
        ("13x", 0.0751, True),
        ("14×", 0.0751, False),
    ],
)
def test_matching_rules(text, value, found):
    (token,) = number_tokens(text, checked_only=False)
    assert matches(value, token) is found


@pytest.mark.parametrize(
    ("text", "changed"),
    [("0.567", "0.568"), ("0.99", "1.00"), ("12%", "13%"), ("−0.24", "−0.25"),
     ("7.8e4", "7.9e4"), ("13×", "14×"), ("1,999.5", "1,999.6"), ("9 %", "10 %")],
)  # fmt: skip
def test_mutation(text, changed):
    (token,) = number_tokens(text, checked_only=False)
    assert mutated(token) == changed


DOC = {"rows": [{"auc": 0.5672, "name": "a/b"}], "a/b": {"ratio": 1.046},
       "stdout": ["median 1869.7, half-width 4.3"], "flag": True}  # fmt: skip


@pytest.mark.parametrize(
    ("pointer", "value"),
    [("/rows/0/auc", 0.5672), ("/a~1b/ratio", 1.046), ("/stdout/0/0", 1869.7),
     ("/stdout/0/1", 4.3)],
)  # fmt: skip
def test_pointer(pointer, value):
    assert resolve(DOC, pointer) == value


@pytest.mark.parametrize(
    "pointer",
    ["/rows/1/auc", "/rows/0/c2st", "rows/0/auc", "/rows/00/auc", "/rows/0/name", "/stdout/0",
     "/stdout/0/2", "/flag", "/rows/0/auc/x", ""],
)  # fmt: skip
def test_pointer_that_does_not_resolve(pointer):
    with pytest.raises(PointerError):
        resolve(DOC, pointer)


PAGE = """# A page

<!-- numbers: results.json -->

The C2ST is 0.567<!--@#/rows/0/auc-->, the width 4.6%<!--@#/a~1b/ratio--> high.

```text
median 1869.7, half-width 4.3
```
<!--@ #/stdout/0/0 #/stdout/0/1 -->

<!-- numbers: end -->
"""


def fake_load(rel: str) -> Any:
    if rel != "results.json":
        raise FileNotFoundError(rel)
    return DOC


def _check_text(text: str) -> tuple[list[Cited], list[str]]:
    cited, problems = check_page("page.md", text, load=fake_load)
    # the tag's file is not in the repository: that problem is the test's own
    return cited, [p for p in problems if "which does not exist" not in p]


def test_a_page_that_cites_every_number_passes():
    cited, problems = _check_text(PAGE)
    assert not problems
    assert [(c.token.text, c.problem) for c in cited] == [
        ("0.567", None), ("4.6%", None), ("1869.7", None), ("4.3", None)]  # fmt: skip


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("0.567<!--@#/rows/0/auc-->", "0.568<!--@#/rows/0/auc-->", "is not"),  # (a)
        ("0.567<!--@#/rows/0/auc-->", "0.567", "has no citation"),  # (b)
        ("0.567<!--@#/rows/0/auc-->", "0.567 <!--@#/rows/0/auc-->", "follows no number"),
        ("0.567<!--@#/rows/0/auc-->", "0.567<!--@#/rows/3/auc-->", "does not resolve"),  # (c)
        ("0.567<!--@#/rows/0/auc-->", "0.567<!--@other.json#/rows/0/auc-->", "does not exist"),
        ("#/stdout/0/0 #/stdout/0/1", "#/stdout/0/0", "1 citation(s) for the 2"),
        ("1869.7", "1869.8", "is not"),
        ("<!-- numbers: results.json -->", "<!-- numbers: results.md -->", "JSON files only"),
    ],
)
def test_a_page_with_a_fault_fails(old, new, expected):
    assert old in PAGE
    cited, problems = _check_text(PAGE.replace(old, new, 1))
    found = problems + [c.problem for c in cited if c.problem]
    assert any(expected in p for p in found), found


def test_numbers_outside_regions_need_a_named_file():
    text = "The C2ST is 0.567<!--@#/rows/0/auc-->.\n"
    cited, _ = _check_text(text)
    assert "outside a numbers region" in cited[0].problem
    cited, _ = _check_text(text.replace("@#", "@results.json#"))
    assert cited[0].problem is None
