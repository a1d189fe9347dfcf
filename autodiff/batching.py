"""Batching (vmap) as a source transformation.

Owns `batch_function`: a CoreFunction plus which parameters are mapped on
which axis → the batched function, written as ordinary Python (a gast
FunctionDef) and run through `templates.build_function`, so the result is
core form again.  Straight-line statements go through the primitives'
batching rules (autodiff/batching_rules.py); control flow (`if`, `for`,
`while`) lives in autodiff/batching_control.py.

The one convention that keeps the rules small: every batched value has its
batch axis at position 0 (arguments are moved there at entry, results moved
to `out_axes` at exit), so a rule only ever sees "batched at 0" or
"unbatched".  Which values are batched is known statically and tracked per
name as a *state*: True (batched), False (not), or, for containers built
in the function or arguments mapped with a pytree `in_axes`, a code
('tuple'|'list', (states...)) / ('dict', keys, (states...)) (see
runtime/batching_support.py).  The batch size is a run-time value held in
one name (`n` or a fresh variant).

Must not differentiate or compile, and must not touch other
transformations' rules.
"""


import gast

from .syntax import clone, walk
from ..errors import ShapeError
from ..runtime.table import PRIMITIVES
from .names import NameScope
from .templates import as_expr, build_function, rule_namespace, template_statements
from .syntax import Const, Name  # noqa: F401  (shared node constructors)

# ------------------------------------------------------------------ states


def is_tree_state(s):
    return isinstance(s, tuple) and len(s) > 0 and s[0] in ("tuple", "list", "dict")


def tree_children(s):
    return list(s[2]) if s[0] == "dict" else list(s[1])


def any_batched(s):
    if is_tree_state(s):
        return any(any_batched(c) for c in tree_children(s))
    return bool(s)


def make_tree_state(kind, children, keys=None):
    """A container state, collapsed to a bool when every child agrees."""
    children = tuple(children)
    if not children:
        return False
    if all(c is True for c in children):
        return True
    if all(c is False for c in children):
        return False
    if kind == "dict":
        return ("dict", tuple(keys), children)
    return (kind, children)


def join_states(a, b):
    """The state of a value that may come from either side (None: undefined)."""
    if a is None:
        return b
    if b is None:
        return a
    if a == b:
        return a
    if is_tree_state(a) and is_tree_state(b) and a[0] == b[0] and a[:-1] == b[:-1] \
            and len(tree_children(a)) == len(tree_children(b)):
        kids = [join_states(x, y) for x, y in zip(tree_children(a), tree_children(b))]
        return make_tree_state(a[0], kids, a[1] if a[0] == "dict" else None)
    return True if (any_batched(a) or any_batched(b)) else False


def spec_to_state(spec):
    """in_axes code (ints/None at the leaves) → state code."""
    if is_tree_state(spec):
        kids = [spec_to_state(c) for c in tree_children(spec)]
        return make_tree_state(spec[0], kids, spec[1] if spec[0] == "dict" else None)
    return spec is not None


# --------------------------------------------------------------- gast helpers


def Call(fn, args, keywords=None):
    return gast.Call(func=Name(fn), args=[as_expr(a) for a in args],
                     keywords=[gast.keyword(arg=k, value=as_expr(v))
                               for k, v in (keywords or {}).items()])


def Assign(target, value):
    return gast.Assign(targets=[Name(target, store=True)], value=as_expr(value),
                       type_comment=None)


def code_expr(code):
    """A constant expression for a state/spec code (tuples of constants)."""
    return Const(code)


# ------------------------------------------------------------------ rules


class BatchCall:
    """What a batching rule sees: one core-form statement `out = prim(...)`
    with the states of its arguments, and the means to emit its batched form.

    A rule appends statements with `emit`/`assign`/`template` and returns the
    state of `out`.
    """

    def __init__(self, batcher, prim, out, args, kwargs, states, kw_states):
        self.batcher = batcher
        self.prim = prim
        self.out = out
        self.args = args
        self.kwargs = kwargs
        self.states = states
        self.kw_states = kw_states
        self.n = batcher.n
        self.mask = batcher.mask

    # -- inspection
    def batched(self, i):
        return any_batched(self.states[i])

    def kw(self, name, default=None):
        """The keyword's gast atom, or a constant for the default."""
        v = self.kwargs.get(name)
        return v if v is not None else Const(default)

    def kw_const(self, name, default=None):
        """(known, value) of a keyword: known when it is a constant."""
        v = self.kwargs.get(name)
        if v is None:
            return True, default
        if isinstance(v, gast.Constant):
            return True, v.value
        return False, None

    def is_const(self, i):
        return isinstance(self.args[i], gast.Constant)

    def rank(self, i):
        """Expression for the per-lane rank of argument i."""
        a = self.args[i]
        if self.batched(i):
            return Call("subtract", [Call("ndim", [a]), 1])
        return Call("ndim", [a])

    def promoted(self, i):
        """Argument i as a fully batched value (broadcast where needed)."""
        return self.batcher.promoted(self.args[i], self.states[i])

    def fresh(self, base):
        return self.batcher.scope.fresh(base)

    # -- emission
    def emit(self, stmt):
        self.batcher.emit(stmt)

    def assign(self, value, target=None):
        self.emit(Assign(target or self.out, value))

    def call(self, args=None, kwargs=None, prim=None):
        """`prim(args, **kwargs)` with the statement's own keywords kept."""
        kw = dict(self.kwargs)
        kw.update(kwargs or {})
        return Call(prim or self.prim, self.args if args is None else args, kw)

    def template(self, rule, args=None, params=None, **extra):
        """Splice `rule`'s body: its parameters bound to `args` (default: the
        statement's arguments), `z` to the output, `PRIM` to the primitive,
        `n` to the batch size; the statement's other keywords are kept on
        the primitive's call."""
        mapping = {"z": self.out, "n": self.n}
        mapping.update(extra)
        stmts = template_statements(rule, self.args if args is None else args, params, mapping)
        for s in stmts:
            for node in walk(s):
                if isinstance(node, gast.Call) and isinstance(node.func, gast.Name) \
                        and node.func.id == "PRIM":
                    node.func.id = self.prim
                    have = {k.arg for k in node.keywords}
                    for k, v in self.kwargs.items():
                        if k not in have:
                            node.keywords.append(gast.keyword(arg=k, value=clone(v)))
            self.emit(s)

    def map_lanes(self):
        """The fallback: run the primitive lane by lane."""
        flags = tuple(self.batched(i) for i in range(len(self.args)))
        args = [self.promoted(i) if is_tree_state(self.states[i]) else a
                for i, a in enumerate(self.args)]
        if any(any_batched(s) for s in self.kw_states.values()):
            raise ShapeError(f"vmap: keyword arguments of {self.prim!r} differ per lane; "
                             "pass them positionally or make them the same for every lane")
        flags = tuple(True if is_tree_state(self.states[i]) else f for i, f in enumerate(flags))
        self.assign(Call("map_lanes", [Const(self.prim), Const(flags), self.n] + args,
                         self.kwargs))
        return True


BATCH_RULES_LOADED = False


def _load_rules():
    """Attach the rules (once), and the lane-by-lane rule to primitives made
    at run time by `custom_jvp`/`custom_vjp` (their bodies are opaque here)."""
    global BATCH_RULES_LOADED
    from . import batching_rules
    BATCH_RULES_LOADED = True
    for name, p in PRIMITIVES.items():
        if p.batch_rule is None and name.startswith("custom_"):
            p.batch_rule = batching_rules.lane_by_lane


# ---------------------------------------------------------------- batcher


class Batcher:
    """Walks a core-form body, emitting its batched form."""

    def __init__(self, core, scope, n, batched_stacks=()):
        self.core = core
        #: stacks (reverse/forward mode's `new_stack` names) that receive a
        #: batched value somewhere in the function.  Every value pushed onto
        #: one of them is pushed batched, so the stack holds one type from the
        #: first push to the last pop (jit needs that; eager then pops the
        #: same values it would under jit).  Found by `batch_function`, which
        #: batches again while the push rule discovers new ones.
        self.batched_stacks = set(batched_stacks)
        #: inside the branches of a batched `if`: pushed name → (lane mask,
        #: its value before the branch); see batching_control.batch_if
        self.masked_pushes = {}
        self.scope = scope
        self.n = n
        self.mask = None
        self.out = []
        self.states = {}
        self.defined = set()
        self.needs_init = []
        self.origin = None
        #: names known to hold a constant (rules may fold, e.g. `x is None`)
        self.consts = {}
        from .batching_control import read_counts
        self.all_reads = read_counts(core.node.body)
        #: names that hold one constant wherever they are assigned: masked
        #: control flow need not merge them per lane (see simplify)
        from .simplify import constant_valued_names
        self.constant_valued = constant_valued_names(core.node.body, core.params)

    # -- emission
    def emit(self, stmt):
        if self.origin:
            stmt.cotan_comment = f"vmap of: {self.origin}"
        self.out.append(stmt)

    def promoted(self, atom, state):
        """`atom` as a fully batched value."""
        if state is True:
            return as_expr(atom)
        if isinstance(atom, gast.Constant) and atom.value is None:
            return as_expr(atom)
        return Call("batch_broadcast", [atom, code_expr(state), self.n])

    def promote_name(self, name, target_state=True):
        """Rebind `name` to its batched form (no-op if already batched)."""
        st = self.states.get(name)
        if st is None or st is True or st == target_state:
            if st is not None:
                self.states[name] = join_states(st, target_state)
            return
        self.emit(Assign(name, self.promoted(name, st)))
        self.states[name] = True

    def state_of(self, atom):
        if isinstance(atom, gast.Name):
            return self.states.get(atom.id, False)
        return False

    # -- statements
    def block(self, stmts):
        for s in stmts:
            self.stmt(s)

    def stmt(self, s):
        self.origin = getattr(s, "cotan_origin", None) or self.origin
        if isinstance(s, gast.Assign):
            self.assign_stmt(s)
        elif isinstance(s, gast.If):
            from .batching_control import batch_if
            batch_if(self, s)
        elif isinstance(s, gast.For):
            from .batching_control import batch_for
            batch_for(self, s)
        elif isinstance(s, gast.While):
            from .batching_control import batch_while
            batch_while(self, s)
        else:
            raise ShapeError(f"vmap: unexpected statement {type(s).__name__} in core form")

    def assign_stmt(self, s):
        target = s.targets[0].id
        v = s.value
        self.consts.pop(target, None)
        if not isinstance(v, gast.Call):
            self.emit(clone(s))
            self.set_state(target, self.state_of(v))
            return
        prim = v.func.id
        states = [self.state_of(a) for a in v.args]
        kw_states = {k.arg: self.state_of(k.value) for k in v.keywords}
        p = PRIMITIVES[prim]
        masked_push = prim == "push" and len(v.args) == 2 and \
            isinstance(v.args[1], gast.Name) and v.args[1].id in self.masked_pushes
        if not masked_push and not any(any_batched(x) for x in states) and \
                not any(any_batched(x) for x in kw_states.values()):
            self.emit(clone(s))
            self.set_state(target, self._unbatched_state(prim, target))
            return
        rule = p.rule("batching")
        call = BatchCall(self, prim, target, [clone(a) for a in v.args],
                         {k.arg: clone(k.value) for k in v.keywords}, states, kw_states)
        state = rule(call)
        self.set_state(target, state)

    def _unbatched_state(self, prim, target):
        # a stack that receives batched values is batched from its creation,
        # so every push and pop on it goes through the rules (containers of
        # unbatched values are unbatched; nothing else to track)
        if prim == "new_stack" and target in self.batched_stacks:
            return True
        return False

    def set_state(self, name, state):
        self.states[name] = state
        self.defined.add(name)


# ---------------------------------------------------------------- entry point


def batch_function(core, in_specs, out_spec, label="vmap"):
    """The batched form of CoreFunction `core` as a new CoreFunction.

    `in_specs`: one coded in_axes per parameter (int, None, or a tree code),
    `out_spec`: the coded out_axes.
    """
    _load_rules()
    params = core.params
    reserved = set(PRIMITIVES) | {"range", "_"} | set(params) | set(core.captured)
    for node in walk(core.node):
        if isinstance(node, gast.Name):
            reserved.add(node.id)
    # A stack may get unbatched pushes before the first batched one (reverse
    # mode saves `s = 0.0` before a loop that makes `s` batched): batch again,
    # with the stacks found batched marked from the start, until none is new.
    # Each round can only add stacks, so this ends.
    stacks = set()
    while True:
        b = _batch_body(core, in_specs, out_spec, NameScope(reserved), stacks)
        if b.batched_stacks <= stacks:
            break
        stacks = set(b.batched_stacks)
    return _assemble(core, b, label)


def _batch_body(core, in_specs, out_spec, scope, batched_stacks):
    """One batching pass over `core`'s body: the Batcher holding the emitted
    statements (return excluded) and the states."""
    params = core.params
    n = scope.fresh("n")
    b = Batcher(core, scope, n, batched_stacks)
    fn_name = core.name
    mapped = [(p, s) for p, s in zip(params, in_specs) if any_batched(spec_to_state(s))]
    if not mapped:
        raise ShapeError(f"vmap of {fn_name!r}: no argument is mapped (in_axes is None for "
                         f"every parameter of {tuple(params)}); map at least one")
    b.origin = None
    b.emit(Assign(n, Call("batch_size", [
        Const(fn_name), Const(tuple(p for p, _ in mapped)),
        gast.Tuple(elts=[Name(p) for p, _ in mapped], ctx=gast.Load()),
        Const(tuple(s for _, s in mapped))])))
    for p, s in zip(params, in_specs):
        st = spec_to_state(s)
        if any_batched(st):
            b.emit(Assign(p, Call("batch_move_in", [p, code_expr(s)])))
        b.set_state(p, st)
    body = core.node.body
    b.block(body[:-1])
    ret = body[-1].value
    b.rstate = b.state_of(ret) if ret is not None else False
    b.origin = getattr(body[-1], "cotan_origin", None) or b.origin
    _check_out_spec(fn_name, out_spec, b.rstate)
    b.out_spec = out_spec
    return b


def _assemble(core, b, label):
    """The batched FunctionDef from a finished pass, built into a CoreFunction."""
    params, fn_name, n = core.params, core.name, b.n
    ret, rstate, out_spec = core.node.body[-1].value, b.rstate, b.out_spec
    stmts = b.out
    result = Call("batch_move_out", [ret if ret is not None else Const(None),
                                     code_expr(out_spec), code_expr(rstate), n])
    ret_stmt = gast.Return(value=result)
    ret_stmt.cotan_comment = f"vmap of: {b.origin}" if b.origin else None
    init = [Assign(v, Const(None)) for v in b.needs_init]
    fdef = gast.FunctionDef(
        name=f"vmap_{fn_name}" if fn_name.isidentifier() else "vmap_fn",
        args=gast.arguments(args=[gast.Name(id=p, ctx=gast.Param(), annotation=None,
                                            type_comment=None) for p in params],
                            posonlyargs=[], vararg=None, kwonlyargs=[], kw_defaults=[],
                            kwarg=None, defaults=[]),
        body=stmts[:1] + init + stmts[1:] + [ret_stmt], decorator_list=[], returns=None,
        type_comment=None, type_params=[])
    namespace = rule_namespace()
    namespace.update(core.captured)
    namespace["range"] = range
    origin = getattr(core.source_fn, "__qualname__", core.name)
    return build_function(fdef, namespace, label, origin)


def _check_out_spec(fn_name, spec, state):
    """out_axes=None is only allowed for outputs that are not batched."""
    if spec is None and any_batched(state):
        raise ShapeError(f"vmap of {fn_name!r}: out_axes=None for an output that depends on "
                         "the mapped inputs; give an axis (e.g. out_axes=0)")
    if is_tree_state(spec):
        kids = tree_children(spec)
        if is_tree_state(state):
            for k, s in zip(kids, tree_children(state)):
                _check_out_spec(fn_name, k, s)
        else:
            for k in kids:
                _check_out_spec(fn_name, k, state)
