"""Reverse mode's analyses of a core-form function, before any code is written.

Owns what `reverse.Reverser` learns about the function it differentiates:
which values are active (depend on the differentiated arguments), which
are containers, which are overwritten and read by the adjoint sweep (and
so need a stack), how parameters read only as `p[key]` split into one
variable per key, and the preparation of loops and branches (trip counts,
copied predicates).  Also the small gast helpers reverse mode writes with.
Must not write the adjoint sweep (reverse.py) or hold rules (vjp_rules.py).
"""


import gast

from .syntax import clone, walk
from ..runtime.table import PRIMITIVES
from .syntax import Const, Name  # noqa: F401  (shared node constructors)

#: primitives whose outputs may be containers (adjoints accumulate with add_any;
#: linspace: with retstep=True)
CONTAINER_PRIMITIVES = {"getitem", "make_tuple", "make_list", "make_dict", "list_append",
                        "to_tuple", "to_list", "slogdet", "qr", "eigh", "svd", "split_like",
                        "unstack_like", "pop_restore", "getitem_adjoint", "add_any",
                        "zero_adjoint", "assemble_adjoint", "linspace",
                        # vmap's helpers hand containers through (grad of vmap)
                        "batch_move_in", "batch_move_out", "batch_broadcast",
                        "batch_sum_unbatched", "getitem_lanes", "getitem_lanes_adjoint",
                        "select_lanes", "map_lanes",
                        # tuple and list `+` / `*` (runtime/structural.py)
                        "seq_concat", "seq_repeat", "seq_repeat_adjoint",
                        # fields of pytree nodes (runtime/pytree_ops.py)
                        "getattr_leaf", "getattr_adjoint"}

#: differentiable primitives that accept containers as well as arrays
_NOT_NUMERIC = {"setitem", "array", "concatenate", "stack", "copy"}


# ------------------------------------------------------------------ gast helpers

def Call(fn, args, keywords=None):
    return gast.Call(func=Name(fn), args=[a if isinstance(a, gast.AST) else Name(a) for a in args],
                     keywords=[gast.keyword(arg=k, value=v) for k, v in (keywords or {}).items()])


def Assign(target, value):
    return gast.Assign(targets=[Name(target, store=True)], value=value, type_comment=None)


def Expr(value):
    return gast.Expr(value=value)


def parse_expr(text):
    return gast.parse(text).body[0].value


def _walk_assigns(stmts):
    for s in stmts:
        if isinstance(s, gast.Assign):
            yield s
        elif isinstance(s, gast.If):
            yield from _walk_assigns(s.body)
            yield from _walk_assigns(s.orelse)
        elif isinstance(s, (gast.For, gast.While)):
            yield from _walk_assigns(s.body)


def _assigned(stmts):
    return {a.targets[0].id for a in _walk_assigns(stmts)}


def _reads(stmts):
    out = set()
    for s in stmts:
        for n in walk(s):
            if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Load):
                out.add(n.id)
    return out


def _call_atoms(value):
    return list(value.args) + [k.value for k in value.keywords]


def _ident(value):
    text = "".join(c if c.isalnum() else "_" for c in str(value)).strip("_")
    return text or "part"


def mark_defined_before(stmts, defined):
    """Record on each loop and `if` (`cotan_defined_before`) the names
    certainly bound when it starts; returns the names certainly bound after
    `stmts`.

    A loop may run zero times, so a name it alone binds may be unbound after
    it: the adjoint sweep must not read such a name unless the loop ran
    (see `Reverser.adj_loop`)."""
    defined = set(defined)
    for s in stmts:
        if isinstance(s, gast.Assign):
            defined.add(s.targets[0].id)
        elif isinstance(s, gast.If):
            # an if's adjoint may zero an adjoint before it, reading a name
            # only some earlier branch bound (two ifs on one predicate, as
            # the lowering of early returns writes them)
            s.cotan_defined_before = frozenset(defined)
            defined |= mark_defined_before(s.body, defined) & \
                mark_defined_before(s.orelse, defined)
        elif isinstance(s, (gast.For, gast.While)):
            s.cotan_defined_before = frozenset(defined)
            inner = set(defined)
            if isinstance(s, gast.For):
                inner.add(s.target.id)
            mark_defined_before(s.body, inner)
    return defined


class ReverseAnalysis:
    """The analysis and preparation half of `reverse.Reverser`."""

    # ---------------------------------------------------------------- analyses

    def split_parts(self):
        """Parameters read only as `p[const]` (a dict of parameters, typically)
        get one variable per part, read once before the primal sweep, so each
        part has its own adjoint and the container's adjoint is assembled once
        at the end (`assemble_adjoint`) instead of adding a zero-filled
        container per read.  Reads inside an `if` are left alone (hoisting
        them could read a key the taken branch never reads)."""
        self.parts = {}
        head = []
        assigned = _assigned(self.body)
        in_if = set()
        for s in walk(gast.Module(body=self.body, type_ignores=[])):
            if isinstance(s, gast.If):
                in_if |= {id(a) for a in _walk_assigns(s.body + s.orelse)}
        ret_reads = {n.id for n in walk(self.ret) if isinstance(n, gast.Name)}
        for i in self.wrt:
            p = self.params[i]
            if p in assigned or p in ret_reads:
                continue
            reads = sum(1 for s in self.body for n in walk(s)
                        if isinstance(n, gast.Name) and n.id == p)
            gets = [a for a in _walk_assigns(self.body) if isinstance(a.value, gast.Call)
                    and a.value.func.id == "getitem" and not a.value.keywords
                    and isinstance(a.value.args[0], gast.Name) and a.value.args[0].id == p]
            if not gets or reads != len(gets) or any(
                    id(a) in in_if or not all(isinstance(c, gast.Constant) for c in a.value.args[1:])
                    for a in gets):
                continue
            keys = {}
            for a in gets:
                key = tuple(c.value for c in a.value.args[1:])
                if key not in keys:
                    keys[key] = self.scope.fresh(p + "_" + "_".join(_ident(k) for k in key))
                    st = Assign(keys[key], Call("getitem", [p] + [Const(k) for k in key]))
                    st.cotan_origin = getattr(a, "cotan_origin", None)
                    head.append(st)
                a.value = Name(keys[key])
            self.parts[p] = list(keys.items())
        return head

    def split_custom_calls(self, stmts):
        """`y = f(x)` for a custom_vjp `f` becomes `pair = f_fwd(x)` and
        `y = f_out(pair, x)` (== pair[0], whose VJP calls f's bwd on
        pair[1]): the user's fwd runs once, in the primal sweep."""
        out = []
        for s in stmts:
            if isinstance(s, gast.Assign) and isinstance(s.value, gast.Call):
                split = getattr(PRIMITIVES[s.value.func.id], "cotan_primal_split", None)
                if split is not None:
                    fwd, prim_out = split
                    pair = self.scope.fresh(s.targets[0].id + "_fwd")
                    a = Assign(pair, Call(fwd, s.value.args))
                    a.cotan_origin = getattr(s, "cotan_origin", None)
                    s.value = Call(prim_out, [Name(pair)] + s.value.args)
                    out += [a, s]
                    continue
            elif isinstance(s, gast.If):
                s.body = self.split_custom_calls(s.body)
                s.orelse = self.split_custom_calls(s.orelse)
            elif isinstance(s, (gast.For, gast.While)):
                s.body = self.split_custom_calls(s.body)
            out.append(s)
        return out

    def find_active(self):
        active = {self.params[i] for i in self.wrt}
        active |= {leaf for parts in self.parts.values() for _, leaf in parts}
        changed = True
        assigns = list(_walk_assigns(self.body))
        while changed:
            changed = False
            for a in assigns:
                y = a.targets[0].id
                if y in active:
                    continue
                v = a.value
                if isinstance(v, gast.Name):
                    hit = v.id in active
                elif isinstance(v, gast.Call):
                    p = PRIMITIVES[v.func.id]
                    hit = p.differentiable and any(
                        isinstance(x, gast.Name) and x.id in active for x in _call_atoms(v))
                else:
                    hit = False
                if hit:
                    active.add(y)
                    changed = True
        self.active = active

    def find_kinds(self):
        """Names known to hold arrays (not containers): `dx + g` accumulates them."""
        defs = {}
        for a in _walk_assigns(self.body):
            defs.setdefault(a.targets[0].id, []).append(a.value)
        arrays = set()
        changed = True
        while changed:
            changed = False
            for y, vals in defs.items():
                if y in arrays:
                    continue
                ok = True
                for v in vals:
                    if isinstance(v, gast.Constant):
                        ok = isinstance(v.value, (int, float)) and not isinstance(v.value, bool)
                    elif isinstance(v, gast.Name):
                        ok = v.id in arrays
                    elif isinstance(v, gast.Call):
                        f = v.func.id
                        if f == "getitem":
                            ok = isinstance(v.args[0], gast.Name) and v.args[0].id in arrays
                        else:
                            ok = f not in CONTAINER_PRIMITIVES and not getattr(
                                PRIMITIVES[f], "cotan_custom", False)
                    else:
                        ok = False
                    if not ok:
                        break
                if ok:
                    arrays.add(y)
                    changed = True
        # a parameter passed to a differentiable numeric primitive is an array
        # (or a scalar): its adjoint accumulates with `+`, not add_any
        for a in _walk_assigns(self.body):
            v = a.value
            if isinstance(v, gast.Call) and v.func.id not in CONTAINER_PRIMITIVES \
                    and v.func.id not in _NOT_NUMERIC and PRIMITIVES[v.func.id].differentiable \
                    and not v.func.id.startswith(("custom_", "checkpoint_")):
                arrays.update(x.id for x in _call_atoms(v) if isinstance(x, gast.Name)
                              and x.id in self.params and x.id not in defs)
        self.arrays = arrays

    def find_overwritten(self):
        """Names assigned more than once on some path (branches of an `if`
        are exclusive), or inside a loop; parameters count as assigned."""
        in_loop = set()

        def count(stmts, loop):
            c = {}
            for s in stmts:
                if isinstance(s, gast.Assign):
                    t = s.targets[0].id
                    c[t] = c.get(t, 0) + 1
                    if loop:
                        in_loop.add(t)
                elif isinstance(s, gast.If):
                    a, b = count(s.body, loop), count(s.orelse, loop)
                    for t in set(a) | set(b):
                        c[t] = c.get(t, 0) + max(a.get(t, 0), b.get(t, 0))
                elif isinstance(s, (gast.For, gast.While)):
                    for t, n in count(s.body, True).items():
                        c[t] = c.get(t, 0) + n
            return c
        counts = count(self.body, False)
        for p in self.params:
            counts[p] = counts.get(p, 0) + 1
        self.for_targets = {s.target.id for s in walk(gast.Module(body=self.body, type_ignores=[]))
                            if isinstance(s, gast.For)}
        return {n for n, c in counts.items() if c >= 2 or n in in_loop} - self.for_targets

    # ---------------------------------------------------------------- preparation

    def prepare(self, stmts):
        """Bookkeeping the adjoint sweep needs: predicate copies, trip counts."""
        out = []
        for s in stmts:
            if isinstance(s, gast.If):
                p = s.test.id
                if p in _assigned(s.body) | _assigned(s.orelse):
                    p0 = self.scope.fresh(p)
                    a = Assign(p0, Name(p))
                    a.cotan_origin = getattr(s, "cotan_origin", None)
                    out.append(a)
                    s.test = Name(p0)
                s.body = self.prepare(s.body)
                s.orelse = self.prepare(s.orelse)
            elif isinstance(s, gast.For):
                start, stop, step = s.iter.args
                inside = _assigned(s.body)
                n = self.scope.fresh("n_" + s.target.id)
                a = Assign(n, Call("trip_count", [clone(start), clone(stop),
                                                  clone(step)]))
                a.cotan_origin = getattr(s, "cotan_origin", None)
                out.append(a)
                s.cotan_trips = n
                kept = []
                for atom in (start, step):
                    if isinstance(atom, gast.Name) and atom.id in inside:
                        c = self.scope.fresh(atom.id)
                        out.append(Assign(c, Name(atom.id)))
                        kept.append(Name(c))
                    else:
                        kept.append(clone(atom))
                s.cotan_start, s.cotan_step = kept
                s.body = self.prepare(s.body)
            elif isinstance(s, gast.While):
                s.cotan_count = self.scope.fresh("n_iter")
                s.cotan_counter = self.scope.fresh("i_iter")
                self.special.update({s.cotan_count, s.cotan_counter})
                s.cotan_reversed = False
                s.body = self.prepare(s.body)
            out.append(s)
        return out
