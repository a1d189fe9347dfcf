"""Versioned names for reassigned variables (static single assignment, as
far as core form allows).

Owns `version_names(core)`: a copy of a core-form function in which a
variable assigned more than once gets a new name per assignment (`a`,
`a_1`, `a_2`), branches that assign a variable end in a copy to a common
name, and only loop-carried variables keep one name across a loop.  Reverse
mode runs it first, so a value that is overwritten outside loops is simply
still there in the adjoint sweep (no stack, no push/pop); inside loops the
stacks hold only the loop-carried values.  Must not change what the
function computes.
"""


import gast

from .syntax import clone, walk
from .names import NameScope
from .normalize import CoreFunction
from .syntax import Assign, Const, Name, core_assigned, core_read_counts


def version_names(core):
    """A CoreFunction computing the same as `core`, with versioned names."""
    node = clone(core.node)
    used = {n.id for n in walk(node) if isinstance(n, gast.Name)}
    from ..runtime.table import PRIMITIVES
    scope = NameScope(used | set(PRIMITIVES) | set(core.captured) | {"range", "_"})
    defined = set(a.id for a in node.args.args)
    current = {a.id: a.id for a in node.args.args}
    body, ret = node.body[:-1], node.body[-1]
    global _root
    _root = node
    _unbound.clear()
    body = _block(body, current, defined, scope, set(current.values()))
    body = [Assign(v, Const(None)) for v in sorted(_unbound)] + body
    ret.value = _read(ret.value, current)
    node.body = body + [ret]
    out = CoreFunction(core.name, node, dict(core.captured), source_fn=core.source_fn)
    return out


def _read(atom, current):
    if isinstance(atom, gast.Name):
        return Name(current.get(atom.id, atom.id))
    return atom


def _rewrite_reads(stmt_value, current):
    """Reads of a statement's right side, renamed to their current versions."""
    v = stmt_value
    if isinstance(v, gast.Name):
        return _read(v, current)
    if isinstance(v, gast.Call):
        v.args = [_read(a, current) for a in v.args]
        for k in v.keywords:
            k.value = _read(k.value, current)
    return v




def _new_version(name, defined, scope):
    """`name` itself on its first assignment, else a fresh `name_k`."""
    if name == "_":
        return "_"
    if name not in defined:
        defined.add(name)
        return name
    v = scope.fresh(name)
    defined.add(v)
    return v


def _block(stmts, current, defined, scope, sure):
    """Version the names of `stmts`; `sure` holds the versions certainly
    assigned at this point (it is updated)."""
    out = []
    for s in stmts:
        if isinstance(s, gast.Assign):
            s.value = _rewrite_reads(s.value, current)
            target = s.targets[0].id
            v = _new_version(target, defined, scope)
            s.targets[0].id = v
            current[target] = v
            sure.add(v)
            out.append(s)
        elif isinstance(s, gast.If):
            s.test = _read(s.test, current)
            out.append(s)
            _if(s, current, defined, scope, sure)
        elif isinstance(s, (gast.For, gast.While)):
            out += _loop(s, current, defined, scope, sure)
            out.append(s)
        else:
            out.append(s)
    return out


def _if(s, current, defined, scope, sure):
    cur_b = dict(current)
    cur_e = dict(current)
    sure_b, sure_e = set(sure), set(sure)
    s.body = _block(s.body, cur_b, defined, scope, sure_b)
    s.orelse = _block(s.orelse, cur_e, defined, scope, sure_e)
    sure |= sure_b & sure_e
    changed = sorted(k for k in set(cur_b) | set(cur_e)
                     if cur_b.get(k) != current.get(k) or cur_e.get(k) != current.get(k))
    for k in changed:
        vb, ve, pre = cur_b.get(k), cur_e.get(k), current.get(k)
        if vb is None or ve is None:
            # defined on one path only: Python would fail reading it on the
            # other, so the one version is the variable after the if
            current[k] = vb or ve
            continue
        if vb == ve:
            current[k] = vb
            continue
        if pre is not None and pre not in sure and (vb == pre or ve == pre):
            # assigned on one path only and maybe unassigned on the other:
            # that path writes the old name back (there is nothing to copy)
            branch, v = (s.body, vb) if ve == pre else (s.orelse, ve)
            if not _rename_last_def(branch, v, pre):
                branch.append(_copy(pre, v, s))
            current[k] = pre
            continue
        # both paths made a new version: they meet under a common name (the
        # plain name when the if is where the variable is born)
        join = k if pre is None and k in (vb, ve) else _new_version(k, defined, scope)
        for branch, v in ((s.body, vb), (s.orelse, ve)):
            if v != join and not _rename_last_def(branch, v, join):
                branch.append(_copy(join, v, s))
        current[k] = join
        sure.add(join)
    if not s.body:
        s.body = s.orelse
        s.orelse = []


def _copy(target, source, like):
    a = Assign(target, Name(source))
    a.cotan_origin = getattr(like, "cotan_origin", None)
    return a


_root = None
_unbound = set()


def _reads(node):
    return core_read_counts([node])


def _exposed(stmts, assigned):
    """Names read in `stmts` before any assignment of them on some path
    (given the names in `assigned` are already assigned)."""
    out = set()
    assigned = set(assigned)
    for st in stmts:
        if isinstance(st, gast.Assign):
            out |= {n.id for n in walk(st.value) if isinstance(n, gast.Name)} - assigned
            assigned.add(st.targets[0].id)
        elif isinstance(st, gast.If):
            if st.test.id not in assigned:
                out.add(st.test.id)
            out |= _exposed(st.body, assigned) | _exposed(st.orelse, assigned)
            assigned |= _definitely(st.body, assigned) & _definitely(st.orelse, assigned)
        elif isinstance(st, (gast.For, gast.While)):
            head = st.iter.args if isinstance(st, gast.For) else [st.test]
            out |= {a.id for a in head if isinstance(a, gast.Name)} - assigned
            inner = assigned | ({st.target.id} if isinstance(st, gast.For) else set())
            out |= _exposed(st.body, inner)
    return out


def _definitely(stmts, assigned):
    got = set(assigned)
    for st in stmts:
        if isinstance(st, gast.Assign):
            got.add(st.targets[0].id)
        elif isinstance(st, gast.If):
            got |= _definitely(st.body, got) & _definitely(st.orelse, got)
    return got


def _loop(s, current, defined, scope, sure):
    """Loop-carried variables keep one name: the body reads it at the top
    and writes it last.  Returns the statements to put before the loop."""
    assigned = core_assigned(s.body)
    inside = _reads(s)
    everywhere = _reads(_root)
    read_outside = {k for k, n in everywhere.items() if n > inside.get(k, 0)}
    start = {s.target.id} if isinstance(s, gast.For) else set()
    live_in = _exposed(s.body, start)
    carried = {c for c in assigned if c in live_in or c in read_outside}
    if isinstance(s, gast.While):
        carried.add(s.test.id)
    carried = sorted(carried)
    if isinstance(s, gast.For):
        s.iter.args = [_read(a, current) for a in s.iter.args]
        carried = [c for c in carried if c != s.target.id]
    loop_name = {}
    for c in carried:
        if c in current:
            loop_name[c] = current[c]
        else:
            loop_name[c] = _new_version(c, defined, scope)
    if isinstance(s, gast.While):
        s.test = Name(loop_name.get(s.test.id, current.get(s.test.id, s.test.id)))
    body_cur = dict(current)
    body_cur.update(loop_name)
    before = []
    if isinstance(s, gast.For):
        orig = s.target.id
        pre = current.get(orig)
        idx = _new_version(orig, defined, scope)
        s.target.id = idx
        body_cur[orig] = idx
        if pre is not None and pre != idx and orig in read_outside:
            # a loop that runs zero times leaves the variable's old value
            # (Python's rule), so the new version starts as the old one; an
            # old version that may itself be unbound (another loop's target)
            # is bound to None at the top, as nothing reads it before it is set
            before.append(_copy(idx, pre, s))
            if pre not in sure:
                _unbound.add(pre)
    s.body = _block(s.body, body_cur, defined, scope, set(sure))
    tail = []
    for c in carried:
        last = body_cur.get(c)
        want = loop_name[c]
        if last is None or last == want:
            continue
        if not _rename_last_def(s.body, last, want):
            tail.append(_copy(want, last, s))
    s.body.extend(tail)
    for c in carried:
        current[c] = loop_name[c]
    if isinstance(s, gast.For):
        current[orig] = idx  # Python keeps the loop variable's last value
    return before


def _rename_last_def(body, last, want):
    """Make the statement defining `last` write `want` directly, when no
    statement after it reads `want` (the loop-carried old value)."""
    for i in range(len(body) - 1, -1, -1):
        s = body[i]
        if isinstance(s, gast.Assign) and s.targets[0].id == last:
            after = body[i + 1:]
            if any(isinstance(n, gast.Name) and n.id == want for st in after
                   for n in walk(st)):
                return False
            # later statements of the block read `last`: they read `want` now
            for st in after:
                for n in walk(st):
                    if isinstance(n, gast.Name) and n.id == last:
                        n.id = want
            s.targets[0].id = want
            return True
        if isinstance(s, (gast.If, gast.For, gast.While)) and any(
                isinstance(n, gast.Assign) and n.targets[0].id == last for n in walk(s)):
            return False
    return False

