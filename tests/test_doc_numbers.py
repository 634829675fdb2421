"""Every measured number in docs/ and README.md comes from a results file (issue #14).

The mechanism: an HTML comment on a line of its own, outside code blocks and
with blank lines around it,

    <!-- numbers: bench/results/fidelity_v2_dplus.md bench/results/sampling_cost.json -->

says where the numbers of the following text come from (paths relative to the
repository root; several files may be cited, and the comment may continue over
several lines). It covers everything up to the next heading, the next
``numbers:`` comment, or ``<!-- numbers: end -->``, code blocks included. It
renders as nothing, on GitHub and in Sphinx (MyST passes it through as an HTML
comment, which the browser does not show).

The checks:

1. ``test_quoted_numbers_match_their_files``: every number of a tagged region
   that the text quotes as a measurement must be a value of one of the cited
   files at the precision written. Quoted are decimals (0.580, +0.04, −0.24,
   1.010, 7.8e4, 0.075×), percentages (12%, 0.9%) and factors written "13×";
   not checked are other integers (sample sizes, seeds, epochs, counts),
   numbers after a comparison sign (``≤ 0.60``, ``> 1``: targets, not
   measurements) and the fixed phrases of ``DEFINITIONS`` (software versions,
   the 16-84% quantiles, the 1% background working point...). A file value
   counts when, rounded to the decimals shown, it gives the number: as is; ×100
   or (value − 1)×100 for a percentage (a width ratio of 1.046 is "+4.6%"); 1/value
   for a factor (a rate ratio of 0.075 is "13× slower"). The sign is not compared
   (a gain of −0.001 is written "loses 0.001"). A JSON file provides all its
   numbers and the numbers written in its strings, except numeric lists longer
   than ``CURVE_LENGTH`` (ROC curves, histories: thousands of values that would
   match anything); any other file (the ``.md`` tables the benchmarks write
   beside their JSON) provides its number tokens as written.
2. ``test_measured_numbers_are_tagged``: outside tagged regions no page may quote
   such a number beside a word that marks a measurement (``MARKERS``: ±, C2ST,
   AUC, MeV, events/s, W1, amplification, slower, loss, "12.3 s"...). In prose a
   marker anywhere in the paragraph (or list) counts, in a table one in its
   header row too, in a code block's output only one on the same line. Python
   and shell code blocks and the command lines of console blocks are not read.
   The few exceptions are listed, with the reason, in ``EXEMPTIONS``; one that no
   longer matches anything fails the test.
3. ``test_tags_are_well_formed``: every cited file exists.

Pure text processing: no network, a fraction of a second.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

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


#: numeric lists longer than this in a results JSON are curves, not quotable values
CURVE_LENGTH = 20

#: a tag (it may continue over several lines); its argument is "end" or one or more
#: paths relative to the repository root
TAG = re.compile(r"^\s*<!--\s*numbers:\s*(?P<args>.*?)\s*-->\s*$", re.DOTALL)
TAG_START = re.compile(r"^\s*<!--\s*numbers:")
HEADING = re.compile(r"^#{1,6}\s")
FENCE = re.compile(r"^\s*(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")
#: code blocks whose contents are code, not output
CODE_LANGS = {"python", "py", "bash", "sh", "shell", "toml", "yaml", "json", "ini"}

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


@dataclass(frozen=True)
class Token:
    text: str
    value: float  # absolute value
    tolerance: float  # half a unit of the last digit shown
    percent: bool
    times: bool = False

    def describe(self) -> str:
        what = "a percentage" if self.percent else "a factor" if self.times else "a number"
        return f"{what} {self.value:g} ± {self.tolerance:g}"


def mask_definitions(text: str) -> str:
    """``text`` with the phrases of ``DEFINITIONS`` blanked (line breaks kept)."""
    for pattern, _ in DEFINITIONS:
        text = pattern.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
    return text


def number_tokens(text: str, *, checked_only: bool = True) -> list[Token]:
    """The numbers in ``text``; with ``checked_only`` only those the docs must source.

    ``text`` must have gone through ``mask_definitions`` already when it comes from a page.
    """
    out = []
    for m in NUMBER.finditer(text):
        frac, exp, raw_suffix = m["frac"], m["exp"], m["suffix"] or ""
        suffix = raw_suffix.strip()
        percent = suffix == "%"
        times = suffix in ("×", "x")
        if checked_only:
            # integers (sample sizes, seeds, epochs, counts) are skipped, but not a
            # percentage or a factor written "13×" ("20 × N_sig" is a multiplication)
            if frac is None and not percent and not (times and raw_suffix == suffix):
                continue
            if COMPARISON.search(text[: m.start()]):
                continue  # a threshold or a target
        digits = m["int"].replace(",", "") + ("." + frac if frac else "")
        scale = 10.0 ** int(exp.replace("−", "-")) if exp else 1.0
        value = abs(float(digits)) * scale
        tolerance = 0.5 * 10.0 ** -(len(frac) if frac else 0) * scale
        out.append(Token(m.group(0).strip(), value, tolerance, percent, times))
    return out


# --------------------------------------------------------------------------- results files


def _json_values(obj, out: list[float]) -> None:
    if isinstance(obj, bool) or obj is None:
        return
    if isinstance(obj, (int, float)):
        out.append(abs(float(obj)))
    elif isinstance(obj, str):
        out.extend(t.value for t in number_tokens(obj, checked_only=False))
    elif isinstance(obj, dict):
        for v in obj.values():
            _json_values(v, out)
    elif isinstance(obj, list):
        if len(obj) > CURVE_LENGTH and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in obj
        ):
            return
        for v in obj:
            _json_values(v, out)


@cache
def file_values(rel: str) -> tuple[list[float], list[float], list[float], list[float]]:
    """Sorted values of a results file: as is, ×100, |value − 1| ×100 and 1/value."""
    path = ROOT / rel
    text = path.read_text(encoding="utf-8")
    values: list[float] = []
    if path.suffix == ".json":
        _json_values(json.loads(text), values)
    else:
        values = [t.value for t in number_tokens(text, checked_only=False)]
    return value_tables(values)


def value_tables(values: list[float]) -> tuple[list[float], list[float], list[float], list[float]]:
    return (
        sorted(values),
        sorted(v * 100 for v in values),
        sorted(abs(v - 1) * 100 for v in values),
        sorted(1 / v for v in values if v),
    )


def _within(sorted_values: list[float], value: float, tol: float) -> bool:
    tol = tol * (1 + 1e-9) + 1e-12
    i = bisect.bisect_left(sorted_values, value - tol)
    return i < len(sorted_values) and sorted_values[i] <= value + tol


def matches_values(token: Token, tables) -> bool:
    """Whether ``token`` is one of the values (``value_tables``) in a form allowed."""
    plain, hundred, excess, inverse = tables
    return (
        _within(plain, token.value, token.tolerance)
        or (token.times and _within(inverse, token.value, token.tolerance))
        or (token.percent and (_within(hundred, token.value, token.tolerance)
                               or _within(excess, token.value, token.tolerance)))
    )  # fmt: skip


def matches(token: Token, files: list[str]) -> bool:
    return any(matches_values(token, file_values(rel)) for rel in files)


# --------------------------------------------------------------------------- pages


@dataclass
class Line:
    page: str
    number: int
    text: str  # what is read: inline code, link targets and console commands removed
    files: list[str] | None  # the cited files of the region, None outside a region
    tag_line: int | None  # the line of the tag
    block: int  # paragraph, table or code block: lines of one block share this id
    header: str  # the header row of the table the line belongs to, else ""
    fenced: bool  # in a code block (output): its markers count line by line


INLINE_CODE = re.compile(r"`[^`]*`")
LINK_TARGET = re.compile(r"\]\([^)]*\)")
ROLE = re.compile(r"\{\w+\}")


def read_page(path: Path) -> tuple[list[Line], list[str]]:
    """The lines to read of a page, and the problems of its tags."""
    rel = path.relative_to(ROOT).as_posix()
    lines: list[Line] = []
    problems: list[str] = []
    raw_lines = path.read_text(encoding="utf-8").splitlines()
    masked_lines = mask_definitions("\n".join(raw_lines)).split("\n")
    files: list[str] | None = None
    tag_line: int | None = None
    fence: str | None = None
    lang = ""
    block = 0
    header = ""
    previous_blank = True
    continuation = False
    pending: tuple[int, str] | None = None  # a tag continued on the next lines
    for n, raw in enumerate(raw_lines, start=1):
        masked = masked_lines[n - 1]
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
                block += 1
                continue
            if lang in CODE_LANGS:
                continue
            if lang == "console" and (raw.lstrip().startswith("$") or continuation):
                continuation = raw.rstrip().endswith("\\")
                continue  # a command, not its output
            text = masked
        else:
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
                    if not (ROOT / a).is_file():
                        problems.append(
                            f"{rel}:{n}: the numbers tag cites {a}, which does not exist"
                        )
                continue
            if raw.lstrip().startswith("<!--") and "numbers" in raw:
                problems.append(f"{rel}:{n}: malformed numbers tag {raw.strip()!r}")
            text = INLINE_CODE.sub(" ", masked)
            text = LINK_TARGET.sub("]", text)
            text = ROLE.sub(" ", text)
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
        lines.append(Line(rel, n, text, files, tag_line, block, header, fence is not None))
    if pending is not None:
        problems.append(f"{rel}:{pending[0]}: numbers tag without its closing -->")
    return lines, problems


def all_lines() -> tuple[list[Line], list[str]]:
    lines, problems = [], []
    for p in pages():
        ls, ps = read_page(p)
        lines += ls
        problems += ps
    return lines, problems


# --------------------------------------------------------------------------- the tests


def test_tags_are_well_formed():
    _, problems = all_lines()
    assert not problems, "\n".join(problems)


def test_quoted_numbers_match_their_files():
    lines, _ = all_lines()
    tagged = [line for line in lines if line.files]
    assert tagged, "no page has a <!-- numbers: ... --> tag"
    failures = []
    for line in tagged:
        files = [f for f in line.files if (ROOT / f).is_file()]
        for token in number_tokens(line.text):
            if not matches(token, files):
                failures.append(
                    f"{line.page}:{line.number}: {token.text!r} ({token.describe()}) is in none "
                    f"of the files cited at line {line.tag_line}: {', '.join(line.files)}"
                )
    assert not failures, f"{len(failures)} quoted number(s) not found:\n" + "\n".join(failures)


def test_measured_numbers_are_tagged():
    lines, _ = all_lines()
    blocks: dict[tuple[str, int], list[Line]] = {}
    for line in lines:
        blocks.setdefault((line.page, line.block), []).append(line)
    failures = []
    used = set()
    for (_, _), block in blocks.items():
        block_marked = any(MARKERS.search(line.text) for line in block)
        for line in block:
            if line.files:
                continue
            marked = (
                bool(MARKERS.search(line.text))
                or (block_marked and not line.fenced)
                or bool(MARKERS.search(line.header))
            )
            tokens = number_tokens(line.text)
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
    ("text", "found"),
    [
        # rounded to the decimals shown
        ("0.581", True),
        ("0.58", True),
        ("0.6", True),
        ("0.582", False),
        # the sign is not compared
        ("−1.04", True),
        ("+1.04", True),
        # a percentage: as is, ×100 (0.0059607) or (ratio − 1) ×100 (1.0435)
        ("0.60%", True),
        ("58.09%", True),
        ("4.4%", True),
        ("4.5%", False),
        ("0.57%", False),
        # scientific notation
        ("2.45e3", True),
        ("2.46e3", False),
        # a factor: as is or its inverse (0.0751)
        ("0.075×", True),
        ("13×", True),
        ("14×", False),
    ],
)
def test_matching_rules(text, found):
    tables = value_tables([0.5808885, 1.0435, 0.0059607, 2451.9, 0.0751])
    (token,) = number_tokens(text)
    assert matches_values(token, tables) is found
