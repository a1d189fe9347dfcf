"""Clean-up of core form: constant propagation and folding, folding of `if`
on constants, dead-code elimination.

Owns `simplify`, run after normalization and after every transformation so
generated code holds no dead statements (an unused zero adjoint, a flag
nobody reads).  Must keep every effectful primitive call (`print`, `check`)
and must not change what the function computes.
"""

import math

import gast
import numpy

from .syntax import Name, walk
from ..runtime.table import PRIMITIVES
from .core_form import is_constant_value


def constant_valued_names(stmts, params=()):
    """Names every assignment of which (anywhere in `stmts`, at any depth)
    computes one and the same value from constants only: a constant, or a
    pure primitive of constants and such names (`t = make_slice(0, 1, None)`
    or `c = cos(1.0)` in a loop body).  Each assignment leaves the value the
    others would, so reverse mode needs no stack for them and vmap need not
    merge them per lane (the value may not be an array, e.g. a slice)."""
    defs = {}
    for n in walk(gast.Module(body=list(stmts), type_ignores=[])):
        if isinstance(n, gast.Assign) and len(n.targets) == 1 \
                and isinstance(n.targets[0], gast.Name):
            defs.setdefault(n.targets[0].id, []).append(n.value)
        elif isinstance(n, gast.For):
            defs.setdefault(n.target.id, []).append(None)
    for p in params:
        defs.setdefault(p, []).append(None)

    def pure_of(v, known):
        if isinstance(v, gast.Constant):
            return True
        if isinstance(v, gast.Call) and isinstance(v.func, gast.Name) \
                and v.func.id in PRIMITIVES and not PRIMITIVES[v.func.id].effectful:
            return all(isinstance(x, gast.Constant) or
                       isinstance(x, gast.Name) and x.id in known
                       for x in list(v.args) + [k.value for k in v.keywords])
        return False

    known = set()
    while True:
        more = {t for t, vs in defs.items() if t not in known and None not in vs
                and len({gast.dump(v) for v in vs}) == 1 and pure_of(vs[0], known)}
        if not more:
            return known
        known |= more


def _scan(fdef):
    """One walk over `fdef`: (assignment counts, read counts, names
    assigned a constant, names read as loop predicates)."""
    counts, reads, consts, protected = {}, {}, {}, set()
    Name_, Load, Assign_, For_, While_, Constant = (gast.Name, gast.Load, gast.Assign,
                                                    gast.For, gast.While, gast.Constant)
    for n in walk(fdef):
        cls = type(n)
        if cls is Name_:
            if type(n.ctx) is Load:
                reads[n.id] = reads.get(n.id, 0) + 1
        elif cls is Assign_:
            t = n.targets[0].id
            counts[t] = counts.get(t, 0) + 1
            if type(n.value) is Constant:
                consts[t] = n.value.value
        elif cls is For_:
            counts[n.target.id] = counts.get(n.target.id, 0) + 2
        elif cls is While_ and type(n.test) is Name_:
            protected.add(n.test.id)
    for a in fdef.args.args:
        counts[a.id] = counts.get(a.id, 0) + 2
    return counts, reads, consts, protected




def _reads(fdef):
    return _scan(fdef)[1]


def _foldable_constant(v):
    if isinstance(v, numpy.bool_):
        v = bool(v)
    if isinstance(v, float) and not math.isfinite(v):
        return None, False
    if is_constant_value(v) and not isinstance(v, bytes):
        return v, True
    return None, False


class _Substitute(gast.NodeTransformer):
    def __init__(self, consts):
        self.consts = consts

    def visit_Name(self, node):
        if isinstance(node.ctx, gast.Load) and node.id in self.consts:
            return gast.Constant(value=self.consts[node.id], kind=None)
        return node


#: primitives that can give a container (or None) although they are differentiable
_MAY_NOT_BE_ARRAY_PREFIXES = ("custom_", "checkpoint_")
_COMPARISONS = {"greater", "greater_equal", "less", "less_equal", "equal", "not_equal",
                "logical_and", "logical_or", "logical_not", "logical_xor", "isfinite",
                "isnan", "isinf", "linspace", "zeros", "ones", "eye", "arange", "full",
                "zeros_like", "ones_like", "full_like", "identity", "where"}


def _never_none(fdef):
    """Names bound once, by a primitive whose result is always an array
    (arithmetic, NumPy functions, comparisons): `x is None` is False for
    them.  `np.where(c, x, y)` inlines as `if x is None: nonzero(c)`; left
    unfolded, the dead `nonzero` branch made vmap refuse every `np.where`."""
    from .reverse_analysis import CONTAINER_PRIMITIVES
    counts = _scan(fdef)[0]
    out = set()
    for n in walk(fdef):
        if isinstance(n, gast.Assign) and isinstance(n.value, gast.Call) \
                and isinstance(n.value.func, gast.Name):
            name = n.value.func.id
            p = PRIMITIVES.get(name)
            t = n.targets[0].id
            if name == "linspace" and (len(n.value.args) > 4 or
                                       any(k.arg == "retstep" for k in n.value.keywords)):
                continue    # (array, step): a container, the only linspace that is one
            array_creation = name in _COMPARISONS and name != "where"
            if p is None or counts.get(t) != 1 or name.startswith(_MAY_NOT_BE_ARRAY_PREFIXES) \
                    or name == "getitem" or (name in CONTAINER_PRIMITIVES and not array_creation):
                continue
            if p.differentiable or name in _COMPARISONS:
                out.add(t)
    return out


def _fold_identity_tests(stmts, never_none):
    """`t = is_(x, None)` (or `is_not`) for an x that is never None → a constant."""
    changed = False
    for n in walk(gast.Module(body=stmts, type_ignores=[])):
        if isinstance(n, gast.Assign) and isinstance(n.value, gast.Call) \
                and isinstance(n.value.func, gast.Name) \
                and n.value.func.id in ("is_", "is_not") and len(n.value.args) == 2:
            a, b = n.value.args
            if isinstance(a, gast.Constant) and a.value is None:
                a, b = b, a
            if isinstance(b, gast.Constant) and b.value is None \
                    and isinstance(a, gast.Name) and a.id in never_none:
                n.value = gast.Constant(value=n.value.func.id == "is_not", kind=None)
                changed = True
    return changed


def simplify(fdef, captured=None, keep=()):
    """Simplify core-form `fdef` in place until nothing changes."""
    for _ in range(20):
        changed = _propagate_constants(fdef, keep)
        changed |= _fold_identity_tests(fdef.body, _never_none(fdef))
        changed |= _fold_block(fdef.body)
        counts, reads, _, _ = _scan(fdef)
        changed |= _dce_block(fdef.body, reads, keep, fdef)
        # counts from before dead-code elimination, which only removes
        # statements: a stale count is never lower, so a coalesce it allows
        # is still right (and one it misses is found next round)
        changed |= _coalesce_block(fdef.body, reads, counts, keep)
        if not changed:
            break
    if captured is not None:
        reads = _reads(fdef)
        for k in [k for k in captured if k not in reads]:
            del captured[k]
    return fdef


def _propagate_constants(fdef, keep):
    counts, _, assigned_consts, protected = _scan(fdef)
    # loop predicates must stay names
    consts = {t: v for t, v in assigned_consts.items()
              if counts.get(t) == 1 and t not in keep and t not in protected}
    if not consts:
        return False
    _Substitute(consts).visit(fdef)
    # the assignments themselves are now dead; dead-code elimination removes them
    return True


def _fold_block(stmts):
    changed = False
    i = 0
    while i < len(stmts):
        s = stmts[i]
        if isinstance(s, gast.Assign) and isinstance(s.value, gast.Call):
            call = s.value
            p = PRIMITIVES.get(call.func.id)
            if p is not None and not p.effectful and call.func.id != "make_slice" \
                    and all(isinstance(a, gast.Constant) for a in call.args) \
                    and all(isinstance(k.value, gast.Constant) for k in call.keywords):
                try:
                    v = p.impl(*[a.value for a in call.args],
                               **{k.arg: k.value.value for k in call.keywords})
                    v, ok = _foldable_constant(v)
                except Exception:
                    ok = False
                if ok:
                    s.value = gast.Constant(value=v, kind=None)
                    changed = True
        elif isinstance(s, gast.If):
            if isinstance(s.test, gast.Constant):
                chosen = s.body if s.test.value else s.orelse
                stmts[i:i + 1] = chosen
                changed = True
                continue
            changed |= _fold_block(s.body)
            changed |= _fold_block(s.orelse)
        elif isinstance(s, (gast.For, gast.While)):
            changed |= _fold_block(s.body)
        i += 1
    return changed




def _dce_block(stmts, reads, keep, fdef):
    changed = False
    out = []
    for s in stmts:
        if isinstance(s, gast.Assign):
            t = s.targets[0].id
            effectful = isinstance(s.value, gast.Call) and \
                getattr(PRIMITIVES.get(s.value.func.id), "effectful", False)
            if not effectful and reads.get(t, 0) == 0 and t not in keep:
                changed = True
                continue
            if isinstance(s.value, gast.Name) and s.value.id == t:
                changed = True
                continue
        elif isinstance(s, gast.If):
            changed |= _dce_block(s.body, reads, keep, fdef)
            changed |= _dce_block(s.orelse, reads, keep, fdef)
            if not s.body and not s.orelse:
                changed = True
                continue
            if not s.body:
                # `if c: <nothing> else: B`  ->  `if not c: B`
                neg = _fresh_name(fdef, "not_" + s.test.id)
                out.append(gast.copy_location(gast.Assign(
                    targets=[gast.Name(id=neg, ctx=gast.Store(), annotation=None, type_comment=None)],
                    value=gast.Call(func=gast.Name(id="logical_not", ctx=gast.Load(),
                                                   annotation=None, type_comment=None),
                                    args=[s.test], keywords=[]), type_comment=None), s))
                out[-1].cotan_origin = getattr(s, "cotan_origin", None)
                s.test = gast.Name(id=neg, ctx=gast.Load(), annotation=None, type_comment=None)
                s.body, s.orelse = s.orelse, []
                changed = True
        elif isinstance(s, gast.For):
            changed |= _dce_block(s.body, reads, keep, fdef)
            if not s.body:
                changed = True
                if reads.get(s.target.id, 0) or s.target.id in keep:
                    out += _last_value_of_target(s, fdef)
                continue
        elif isinstance(s, gast.While):
            changed |= _dce_block(s.body, reads, keep, fdef)
        out.append(s)
    stmts[:] = out
    return changed


def _last_value_of_target(loop, fdef):
    """What a `for` whose body is dead leaves behind: its target holds the
    last trip's value, or keeps its old one when the loop runs zero times
    (Python's rule), so the loop becomes `if n > 0: i = start + (n-1)*step`."""
    start, stop, step = loop.iter.args
    used = {n.id for n in walk(fdef) if isinstance(n, gast.Name)} | set(PRIMITIVES)
    origin = getattr(loop, "cotan_origin", None)

    def fresh(base):
        name, k = base, 0
        while name in used:
            k += 1
            name = f"{base}_{k}"
        used.add(name)
        return name

    def atom(x):
        if isinstance(x, str):
            return Name(x)
        if isinstance(x, gast.Constant):
            return gast.Constant(value=x.value, kind=None)
        return Name(x.id)

    def assign(target, prim, *args):
        a = gast.Assign(targets=[Name(target, store=True)],
                        value=gast.Call(func=Name(prim), args=[atom(x) for x in args],
                                        keywords=[]), type_comment=None)
        a.cotan_origin = origin
        return a
    n, ran, k, off = fresh("n_trips"), fresh("ran"), fresh("last_trip"), fresh("last_offset")
    one, zero = gast.Constant(value=1, kind=None), gast.Constant(value=0, kind=None)
    node = gast.If(test=Name(ran), body=[
        assign(k, "subtract", n, one), assign(off, "multiply", k, step),
        assign(loop.target.id, "add", start, off)], orelse=[])
    node.cotan_origin = origin
    return [assign(n, "trip_count", start, stop, step), assign(ran, "greater", n, zero), node]


def _fresh_name(fdef, base):
    used = {n.id for n in walk(fdef) if isinstance(n, gast.Name)} | set(PRIMITIVES)
    if base not in used:
        return base
    k = 1
    while f"{base}_{k}" in used:
        k += 1
    return f"{base}_{k}"




def _coalesce_block(stmts, reads, counts, keep):
    changed = False
    out = []
    for s in stmts:
        if isinstance(s, gast.If):
            changed |= _coalesce_block(s.body, reads, counts, keep)
            changed |= _coalesce_block(s.orelse, reads, counts, keep)
        elif isinstance(s, (gast.For, gast.While)):
            changed |= _coalesce_block(s.body, reads, counts, keep)
        elif isinstance(s, gast.Assign) and isinstance(s.value, gast.Name) and out:
            prev = out[-1]
            src = s.value.id
            if isinstance(prev, gast.Assign) and prev.targets[0].id == src \
                    and reads.get(src) == 1 and counts.get(src) == 1 and src not in keep \
                    and not _reads_name(prev.value, s.targets[0].id):
                prev.targets[0].id = s.targets[0].id
                changed = True
                continue
        out.append(s)
    stmts[:] = out
    return changed


def _reads_name(node, name):
    return any(isinstance(n, gast.Name) and n.id == name for n in walk(node))
