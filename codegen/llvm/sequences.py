"""LLVM lowerings of tuple and list `+` and `*` (runtime/structural.py).

Owns the lowerings of `seq_concat`, `seq_repeat` and `operand_guard`.
Containers are static structure in the typed program, so a concatenation
or a repetition only rearranges the emitted values of the entries (each
kept as `make_tuple` keeps it), and the guard's check already ran on the
abstract values during inference.  Must not lower other primitives.
"""

from .lowerings import lowering, register, _captured


def _entries(em, atom, seq):
    return [_captured(em, atom, v) for v in seq]


@lowering("seq_concat")
def _seq_concat(em, s, args, kwargs):
    a, b = args
    out = _entries(em, s.args[0], a) + _entries(em, s.args[1], b)
    return tuple(out) if isinstance(a, tuple) else out


@lowering("seq_repeat")
def _seq_repeat(em, s, args, kwargs):
    a, n = args
    out = _entries(em, s.args[0], a) * int(n)
    return tuple(out) if isinstance(a, tuple) else out


@lowering("operand_guard")
def _operand_guard(em, s, args, kwargs):
    return None


register()
