"""Entry selections (``--cut``, ``cut=``) evaluated by vaeaug itself, on TTrees and RNTuples alike.

uproot applies ``cut=`` to a TTree but its RNTuple reader accepts the argument and
ignores it (uproot 5.7), which would train a model on the wrong selection without a
word. vaeaug therefore reads the branches a cut names and evaluates it itself, for every
format, with the syntax of uproot's cut expressions::

    nMuon == 2
    (K1_pt > 0.5) & (pi1_pt > 0.3)
    Jet_pt[:, 0] > 30            # the leading jet of events that have one
    2.9 < Dimuon_mass < 3.3      # a chained comparison
    abs(K1_eta) < 2 and not (pi2_E > 50)

Names are branches of the tree; ``and``, ``or``, ``not`` and chained comparisons work
element by element (as ``&``, ``|``, ``~``); the functions of :data:`FUNCTIONS` may be
called. Nothing else is allowed (no attributes, no other calls), so evaluating a cut
runs no code of its own. A cut must give one boolean per entry.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence

import awkward as ak
import numpy as np

from ..errors import InputError, close_matches

__all__ = ["FUNCTIONS", "cut_branches", "evaluate_cut"]

#: The functions a cut may call, by name.
FUNCTIONS = {
    "abs": np.abs, "sqrt": np.sqrt, "log": np.log, "exp": np.exp, "sin": np.sin,
    "cos": np.cos, "tan": np.tan, "arctan2": np.arctan2, "sinh": np.sinh, "cosh": np.cosh,
    "tanh": np.tanh, "arcsinh": np.arcsinh, "arccosh": np.arccosh, "arctanh": np.arctanh,
    "minimum": np.minimum, "maximum": np.maximum, "where": np.where,
}  # fmt: skip
_NODES = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.BinOp, ast.Add, ast.Sub, ast.Mult,
    ast.Div, ast.Pow, ast.Mod, ast.FloorDiv, ast.BitAnd, ast.BitOr, ast.BitXor, ast.UnaryOp,
    ast.USub, ast.UAdd, ast.Not, ast.Invert, ast.Compare, ast.Eq, ast.NotEq, ast.Lt,
    ast.LtE, ast.Gt, ast.GtE, ast.Name, ast.Load, ast.Constant, ast.Call, ast.Subscript,
    ast.Slice, ast.Tuple,
)  # fmt: skip


def _parse(cut: str) -> ast.Expression:
    try:
        tree = ast.parse(cut.strip(), mode="eval")
    except SyntaxError as err:
        raise InputError(f"cut '{cut}' is not an expression: {err.msg}") from None
    for node in ast.walk(tree):
        if not isinstance(node, _NODES):
            raise InputError(
                f"cut '{cut}': {type(node).__name__} is not allowed; a cut combines branches "
                "with arithmetic, comparisons, &, |, ~, and, or, not, indexing such as "
                f"Jet_pt[:, 0] and the functions {', '.join(FUNCTIONS)}"
            )
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float, bool)):
            raise InputError(
                f"cut '{cut}': only numbers may appear as constants, got {node.value!r}"
            )
        if isinstance(node, ast.Call) and (
            not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS or node.keywords
        ):
            name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
            raise InputError(
                f"cut '{cut}': '{name}(...)' cannot be called; the functions a cut may call "
                f"(positional arguments only): {', '.join(FUNCTIONS)}"
            )
    return tree


def cut_branches(cut: str, branches: Sequence[str]) -> list[str]:
    """The branches ``cut`` reads, in order of appearance; refuses any name that is not a
    branch of ``branches`` (or a function of :data:`FUNCTIONS` called as one)."""
    tree = _parse(cut)
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and id(node) not in called:
            if node.id not in branches:
                raise InputError(
                    f"cut '{cut}' names '{node.id}', which is not a branch of the tree"
                    f"{close_matches(node.id, list(branches))}"
                )
            if node.id not in out:
                out.append(node.id)
    return out


class _Elementwise(ast.NodeTransformer):
    """``and``/``or``/``not`` and chained comparisons, element by element."""

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:
        self.generic_visit(node)
        op = ast.BitAnd() if isinstance(node.op, ast.And) else ast.BitOr()
        out = node.values[0]
        for value in node.values[1:]:
            out = ast.BinOp(out, op, value)
        return out

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        self.generic_visit(node)
        return ast.UnaryOp(ast.Invert(), node.operand) if isinstance(node.op, ast.Not) else node

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        left, out = node.left, None
        for op, right in zip(node.ops, node.comparators):
            pair = ast.Compare(left, [op], [right])
            out = pair if out is None else ast.BinOp(out, ast.BitAnd(), pair)
            left = right
        return out


def evaluate_cut(cut: str, arrays: Mapping[str, ak.Array], n_entries: int) -> np.ndarray:
    """The entries ``cut`` keeps: (n_entries,) bool, from the branches' ``arrays``."""
    tree = ast.fix_missing_locations(_Elementwise().visit(_parse(cut)))
    namespace = {**FUNCTIONS, **{name: arrays[name] for name in cut_branches(cut, list(arrays))}}
    try:
        with np.errstate(all="ignore"):
            value = eval(compile(tree, "<cut>", "eval"), {"__builtins__": {}}, namespace)
    except Exception as err:
        raise InputError(f"cut '{cut}' could not be evaluated: {err}") from None
    if isinstance(value, ak.Array):
        if value.ndim != 1:
            raise InputError(
                f"cut '{cut}' gives a value per object, not one per entry; select entries, e.g. "
                "'nJet >= 2' or 'Jet_pt[:, 0] > 30' (the leading object)"
            )
        value = ak.to_numpy(ak.fill_none(value, False))
    value = np.asarray(value)
    if value.shape == ():
        value = np.full(n_entries, bool(value))
    if value.shape != (n_entries,) or value.dtype != bool:
        raise InputError(
            f"cut '{cut}' must give one boolean per entry ({n_entries}), got "
            f"{value.dtype} of shape {value.shape}"
        )
    return value
