"""Random plain-NumPy programs and the checks every transformation must pass on them.

Owns the generator (`generate(seed, exclude)` → `RandomProgram`) and the
checker (`check_program(prog, transforms)` → one `Outcome` per
transformation).  A program is Python source text: scalars, vectors and
square matrices; arithmetic and smooth NumPy functions; reductions with
`axis`; matmul; `np.where`; slicing and slice assignment; in-place element
updates; `if`/`else` on values; `for` over ranges whose bounds read outer
loop indices (`range(i)`, `range(i, n)`, `range(i + 1, n)`, `while j < i`);
`while` with a counter; `break`/`continue`; early return; helper calls;
float64 or float32 inputs.  The source is exec'd into a fresh module
namespace under a filename registered with `linecache`, so cotan reads it
as it reads user code.

Every value condition is written `_gt(a, b)` in the *instrumented* source,
which records the decision and its margin; the *plain* source (what cotan
transforms) has `a > b` there.  Inputs are resampled until every decision
is at least `MARGIN` from its boundary and finite differences do not change
the branch path, so the references are valid:

* grad, jvp: central finite differences of the plain function (float64);
  for float32 programs, the float64 derivative of the same program,
* jit, jit(grad): eager NumPy, eager finite differences,
* vmap, vmap(grad): a Python loop over the lanes (of the function, of
  finite differences),
* grad of grad: finite differences of the eager gradient.

Used by tests/test_random_programs.py (bounded, fixed seeds) and
bench/random_programs.py (many programs in one process).  Must not import
cotan at module level: the generator is plain text + NumPy, and the checker
imports cotan when it runs.
"""

import ast
import itertools
import linecache
import re
import sys
import traceback
import types

import numpy as np

#: constructs the generator can emit; `exclude` in `generate` switches some off
CONSTRUCTS = ("if", "for", "triangular", "while", "break", "continue", "early_return",
              "helper", "slice_assign", "element_update", "where", "matmul",
              "reduce_axis", "cumsum", "matrix", "float32", "two_args", "reverse",
              "constant_expression", "helper_early_return")

#: transformations `check_program` knows
TRANSFORMS = ("grad", "jvp", "jit", "jit_grad", "vmap", "vmap_grad", "grad_grad")

MARGIN = 1e-3          # a decision closer than this to its boundary is resampled
FD_STEP = 1e-5
BATCH = 3


class RandomProgram:
    def __init__(self, seed, source, instrumented, name, kinds, n, dtype, features):
        self.seed = seed
        self.source = source                  # plain source: what cotan transforms
        self.instrumented = instrumented      # the same with decisions recorded
        self.name = name
        self.kinds = kinds                    # per argument: "s", "v" or "m"
        self.n = n
        self.dtype = dtype
        self.features = features
        self.set_aside = None                 # why no check ran, when NumPy is not the reference

    def __repr__(self):
        return f"<RandomProgram seed={self.seed} {sorted(self.features)}>\n{self.source}"


# -- the generator -----------------------------------------------------------

class _Gen:
    """Writes one program; `env` maps live names to kinds ("s", "v", "m")."""

    def __init__(self, rng, exclude):
        self.rng = rng
        self.ok = {c for c in CONSTRUCTS if c not in exclude}
        self.n = int(rng.integers(2, 5))
        self.features = set()
        self.counter = itertools.count()
        self.helpers = []          # (name, arg kinds, result kind)
        self.helper_src = []

    # small random helpers
    def p(self, prob):
        return self.rng.random() < prob

    def choice(self, seq):
        return seq[int(self.rng.integers(len(seq)))]

    def const(self):
        return self.choice(["0.5", "1.5", "-0.7", "2.0", "0.3", "-1.2", "0.25"])

    def fresh(self, prefix):
        return f"{prefix}{next(self.counter)}"

    def use(self, feature):
        self.features.add(feature)

    # expressions ------------------------------------------------------------
    def index(self, ctx):
        """An int expression valid as an index into a length-n axis."""
        opts = [str(int(self.rng.integers(self.n)))] + list(ctx["idx"])
        return self.choice(opts)

    def vars_of(self, ctx, kind):
        return [k for k, v in ctx["env"].items() if v == kind]

    def writable(self, ctx, kind):
        """Names that may be updated in place (never the caller's arrays)."""
        return [k for k in self.vars_of(ctx, kind) if k not in ctx.get("params", ())]

    def scalar(self, ctx, d):
        r = self.rng.random()
        if d <= 0 or r < 0.25:
            opts = [self.const()] + self.vars_of(ctx, "s") * 2
            if self.vars_of(ctx, "v"):
                opts.append(f"{self.choice(self.vars_of(ctx, 'v'))}[{self.index(ctx)}]")
            if self.vars_of(ctx, "m"):
                opts.append(f"{self.choice(self.vars_of(ctx, 'm'))}"
                            f"[{self.index(ctx)}, {self.index(ctx)}]")
            return self.choice(opts)
        r = self.rng.random()
        a = self.scalar(ctx, d - 1)
        if r < 0.3:
            return self.unary(a)
        if r < 0.6:
            b = self.scalar(ctx, d - 1)
            return self.binary(a, b)
        if r < 0.85:
            v = self.vector(ctx, d - 1)
            f = self.choice(["np.sum({v})", "np.mean({v})", "np.dot({v}, {w})", "({v}) @ ({w})",
                             "np.sum(np.tanh({v}) * {w})"])
            if "@" in f or "dot" in f:
                self.use("matmul")
            return f.format(v=v, w=self.vector(ctx, d - 1))
        if "matrix" in self.ok and r < 0.93:
            self.use("matrix")
            m = self.matrix(ctx, d - 1)
            return self.choice([f"np.sum({m})", f"np.mean({m} * {m})", f"np.trace({m})"])
        return self.call_helper(ctx, "s", d) or a

    def unary(self, a):
        return self.choice([f"np.sin({a})", f"np.cos({a})", f"np.tanh({a})",
                            f"np.exp(np.tanh({a}))", f"np.log(1.0 + ({a}) * ({a}))",
                            f"np.sqrt(1.0 + ({a}) * ({a}))", f"({a}) ** 2", f"-({a})",
                            f"0.5 * ({a})"])

    def binary(self, a, b):
        return self.choice([f"({a}) + ({b})", f"({a}) - ({b})", f"({a}) * ({b})",
                            f"({a}) / (1.0 + ({b}) ** 2)", f"({a}) * np.tanh({b})"])

    def vector(self, ctx, d, sl=None):
        """A vector expression of length n (or of the slice `sl` of every vector)."""
        vs = self.vars_of(ctx, "v")
        ms = self.vars_of(ctx, "m")
        suffix = "" if sl is None else f"[{sl}]"
        r = self.rng.random()
        if d <= 0 or r < 0.25 or not vs:
            opts = [v + suffix for v in vs] * 2
            if sl is None:
                opts.append(f"np.linspace({self.const()}, {self.const()}, {self.n})")
                for m in ms:
                    i = self.index(ctx)
                    opts += [f"{m}[{i}]", f"{m}[:, {i}]"]
            if not opts:
                return f"np.linspace(0.1, 1.0, {self.n}){suffix}"
            return self.choice(opts)
        r = self.rng.random()
        a = self.vector(ctx, d - 1, sl)
        if r < 0.25:
            return self.unary(a)
        if r < 0.55:
            b = self.vector(ctx, d - 1, sl) if self.p(0.5) else self.scalar(ctx, d - 1)
            return self.binary(a, b) if self.p(0.5) else self.binary(b, a)
        if r < 0.65 and "where" in self.ok:
            self.use("where")
            c = self.vector(ctx, d - 1, sl)
            return f"np.where(_gt({c}, {self.scalar(ctx, 0)}), {a}, {self.vector(ctx, d - 1, sl)})"
        if sl is None:
            if r < 0.8 and ms and "matrix" in self.ok:
                m = self.choice(ms)
                if self.p(0.6) and "matmul" in self.ok:
                    self.use("matmul")
                    return self.choice([f"{m} @ ({a})", f"({a}) @ {m}", f"np.dot({m}, {a})"])
                if "reduce_axis" in self.ok:
                    self.use("reduce_axis")
                    return self.choice([f"np.sum({m}, axis=0)", f"np.mean({m}, axis=1)",
                                        f"np.sum(np.sin({m}), axis=1)"])
            if r < 0.88 and "cumsum" in self.ok:
                self.use("cumsum")
                return f"np.cumsum({a})"
            if r < 0.94 and "reverse" in self.ok:
                self.use("reverse")
                return f"({a})[::-1]"
            h = self.call_helper(ctx, "v", d)
            if h:
                return h
        return a

    def matrix(self, ctx, d):
        ms = self.vars_of(ctx, "m")
        r = self.rng.random()
        if d <= 0 or r < 0.3 or not ms:
            vs = self.vars_of(ctx, "v")
            if ms and self.p(0.7):
                return self.choice(ms)
            v = self.vector(ctx, 0)
            if vs or self.p(0.5):
                return f"np.outer({v}, {self.vector(ctx, 0)})"
            return f"np.eye({self.n}) * {self.const()}"
        a = self.matrix(ctx, d - 1)
        r = self.rng.random()
        if r < 0.25:
            return self.unary(a)
        if r < 0.5:
            b = self.matrix(ctx, d - 1) if self.p(0.5) else self.scalar(ctx, d - 1)
            return self.binary(a, b)
        if r < 0.65 and "matmul" in self.ok:
            self.use("matmul")
            return f"({a}) @ ({self.matrix(ctx, d - 1)})"
        if r < 0.75:
            return f"({a}).T"
        if r < 0.85 and "reduce_axis" in self.ok:
            self.use("reduce_axis")
            return self.choice([f"({a}) - np.mean({a}, axis=1, keepdims=True)",
                                f"({a}) * np.sum({a}, axis=0, keepdims=True)"])
        if "where" in self.ok:
            self.use("where")
            return f"np.where(_gt({a}, {self.scalar(ctx, 0)}), {a}, {self.matrix(ctx, 0)})"
        return a

    def expr(self, ctx, kind, d):
        return {"s": self.scalar, "v": self.vector, "m": self.matrix}[kind](ctx, d)

    def owned(self, ctx, kind, d):
        """An expression that makes a new array (never a view of a live one)."""
        e = self.expr(ctx, kind, d)
        names = [n for n in ctx["env"] if re.search(rf"\b{n}\b", e)]
        if not names:
            # made of constants only (`s = np.exp(np.tanh(2.0))`)
            if "constant_expression" in self.ok:
                self.use("constant_expression")
            else:
                for _ in range(8):
                    e = self.expr(ctx, kind, d)
                    if any(re.search(rf"\b{n}\b", e) for n in ctx["env"]):
                        break
                else:
                    e = f"{e} + 0.0 * {self.choice(self.vars_of(ctx, 's') or ['0.0'])}"
        if kind != "s" and re.fullmatch(r"[\w\[\]:, ]*(\.T)?|\(.*\)\.T|.*\[::-1\]", e):
            e = f"np.copy({e})"
        return e

    def call_helper(self, ctx, kind, d):
        if "helper" not in self.ok or ctx.get("in_helper"):
            return None
        cands = [h for h in self.helpers if h[2] == kind]
        if not cands and len(self.helpers) < 2:
            cands = [self.make_helper(kind)]
        if not cands:
            return None
        name, kinds, _ = self.choice(cands)
        self.use("helper")
        return f"{name}({', '.join(self.expr(ctx, k, d - 1) for k in kinds)})"

    def make_helper(self, kind):
        name = f"helper{len(self.helpers)}"
        kinds = [kind, "s"]
        params = ["a", "b"]
        ctx = {"env": dict(zip(params, kinds)), "idx": [], "loops": [], "in_helper": True,
               "depth": 0}
        lines = [f"def {name}({', '.join(params)}):"]
        body = []
        if self.p(0.4) and "if" in self.ok and "helper_early_return" in self.ok:
            self.use("helper_early_return")
            # an early return in the helper
            self.use("early_return")
            body.append(f"    if _gt({self.scalar(ctx, 1)}, {self.const()}):")
            body.append(f"        return {self.expr(ctx, kind, 1)}")
        t = self.fresh("t")
        body.append(f"    {t} = {self.expr(ctx, kind, 2)}")
        ctx["env"][t] = kind
        body.append(f"    return {self.expr(ctx, kind, 1)} + {t}")
        self.helper_src.append("\n".join(lines + body))
        self.helpers.append((name, kinds, kind))
        return self.helpers[-1]

    # statements -------------------------------------------------------------
    def block(self, ctx, ind, budget):
        out = []
        nstmt = int(self.rng.integers(1, 4))
        for _ in range(nstmt):
            if budget[0] <= 0:
                break
            budget[0] -= 1
            out += self.stmt(ctx, ind, budget)
        if not out:
            out = [self.assign(ctx, ind)]
        return out

    def assign(self, ctx, ind, new_ok=True):
        kinds = ["s", "s", "v"] + (["m"] if "matrix" in self.ok else [])
        kind = self.choice(kinds)
        live = self.vars_of(ctx, kind)
        pad = "    " * ind
        if live and (not new_ok or self.p(0.6)):
            name = self.choice(live)
            if self.p(0.3) and (kind == "s" or name in self.writable(ctx, kind)):
                op = self.choice(["+=", "-=", "*="])
                rhs = self.expr(ctx, kind, 2)
                if op == "*=":
                    rhs = f"np.tanh({rhs})"
                return f"{pad}{name} {op} {rhs}"
            return f"{pad}{name} = {self.owned(ctx, kind, 2)}"
        name = self.fresh(kind)
        line = f"{pad}{name} = {self.owned(ctx, kind, 2)}"
        ctx["env"][name] = kind
        ctx["scope"].append(name)
        return line

    def stmt(self, ctx, ind, budget):
        pad = "    " * ind
        r = self.rng.random()
        depth = len(ctx["loops"])
        in_loop = bool(ctx["loops"])
        if r < 0.3:
            return [self.assign(ctx, ind)]
        if r < 0.42 and "element_update" in self.ok and \
                self.writable(ctx, "v") + self.writable(ctx, "m"):
            self.use("element_update")
            name = self.choice(self.writable(ctx, "v") + self.writable(ctx, "m"))
            if ctx["env"][name] == "m":
                i, j = self.index(ctx), self.index(ctx)
                if self.p(0.3):
                    return [f"{pad}{name}[{i}] = {self.vector(ctx, 1)}"]
                tgt = f"{name}[{i}, {j}]"
            else:
                tgt = f"{name}[{self.index(ctx)}]"
            op = self.choice(["=", "+=", "*="])
            rhs = self.scalar(ctx, 2)
            if op == "*=":
                rhs = f"np.cos({rhs})"
            return [f"{pad}{tgt} {op} {rhs}"]
        if r < 0.5 and "slice_assign" in self.ok and self.writable(ctx, "v"):
            self.use("slice_assign")
            name = self.choice(self.writable(ctx, "v"))
            a = int(self.rng.integers(0, self.n - 1))
            b = int(self.rng.integers(a + 1, self.n + 1))
            sl = f"{a}:{b}"
            return [f"{pad}{name}[{sl}] = {self.vector(ctx, 2, sl)}"]
        if r < 0.62 and "if" in self.ok and depth < 3:
            self.use("if")
            out = [f"{pad}if _gt({self.scalar(ctx, 2)}, {self.const()}):"]
            out += self.sub_block(ctx, ind + 1, budget)
            if self.p(0.6):
                out.append(f"{pad}else:")
                out += self.sub_block(ctx, ind + 1, budget)
            return out
        if r < 0.8 and "for" in self.ok and depth < 3:
            return self.for_loop(ctx, ind, budget)
        if r < 0.87 and "while" in self.ok and depth < 3:
            return self.while_loop(ctx, ind, budget)
        if in_loop and r < 0.93:
            kind = "break" if self.p(0.5) else "continue"
            if kind == "continue" and ctx["loops"][-1] == "while":
                kind = "break"
            if kind in self.ok:
                self.use(kind)
                if self.p(0.5):
                    cond = f"_gt({self.scalar(ctx, 1)}, {self.const()})"
                else:
                    cond = f"{ctx['idx'][-1]} == {int(self.rng.integers(self.n))}"
                return [f"{pad}if {cond}:", f"{pad}    {kind}"]
        if r < 0.97 and "early_return" in self.ok and "if" in self.ok:
            self.use("early_return")
            return [f"{pad}if _gt({self.scalar(ctx, 2)}, {self.const()}):",
                    f"{pad}    return {self.result(ctx)}"]
        return [self.assign(ctx, ind)]

    def sub_block(self, ctx, ind, budget):
        """A nested block; names first bound inside it are dropped after it."""
        saved_scope = ctx["scope"]
        ctx["scope"] = []
        out = self.block(ctx, ind, budget)
        for name in ctx["scope"]:
            ctx["env"].pop(name, None)
        ctx["scope"] = saved_scope
        return out

    def bound_pair(self, ctx):
        """(lo, hi) loop bounds in [0, n]; inner bounds may read outer indices."""
        n = self.nexpr
        outer = list(ctx["idx"])
        if outer and "triangular" in self.ok and self.p(0.7):
            self.use("triangular")
            i = self.choice(outer)
            return self.choice([("0", i), (i, n), (f"{i} + 1", n), ("1", f"{i} + 1")])
        return self.choice([("0", n), ("1", n), ("0", str(max(1, self.n - 1)))])

    def for_loop(self, ctx, ind, budget):
        self.use("for")
        pad = "    " * ind
        lo, hi = self.bound_pair(ctx)
        i = self.fresh("i")
        head = f"range({hi})" if lo == "0" and self.p(0.5) else f"range({lo}, {hi})"
        out = [f"{pad}for {i} in {head}:"]
        ctx["idx"].append(i)
        ctx["loops"].append("for")
        out += self.sub_block(ctx, ind + 1, budget)
        ctx["idx"].pop()
        ctx["loops"].pop()
        return out

    def while_loop(self, ctx, ind, budget):
        self.use("while")
        pad = "    " * ind
        lo, hi = self.bound_pair(ctx)
        k = self.fresh("k")
        out = [f"{pad}{k} = {lo}", f"{pad}while {k} < {hi}:"]
        ctx["idx"].append(k)
        ctx["loops"].append("while")
        out += self.sub_block(ctx, ind + 1, budget)
        ctx["idx"].pop()
        ctx["loops"].pop()
        # the counter steps last; `continue` is never generated in a while body
        out.append(f"{pad}    {k} = {k} + 1")
        return out

    def result(self, ctx):
        """A scalar combining every live name (so each one's derivative matters)."""
        terms = []
        for name, kind in ctx["env"].items():
            if kind == "s":
                terms.append(f"np.sin({name})" if self.p(0.3) else name)
            elif kind == "v":
                terms.append(f"np.sum(np.tanh({name}))" if self.p(0.5) else f"np.sum({name})")
            else:
                terms.append(f"np.mean({name})")
        return " + ".join(terms) if terms else "0.0"

    def program(self):
        two = "two_args" in self.ok and self.p(0.25)
        kinds = [self.choice(["s", "v", "v"] + (["m"] if "matrix" in self.ok else []))]
        if two:
            self.use("two_args")
            kinds.append(self.choice(["s", "v"]))
        if kinds[0] == "m":
            self.use("matrix")
        self.dtype = "float32" if "float32" in self.ok and self.p(0.15) else "float64"
        if self.dtype == "float32":
            self.use("float32")
        params = ["x", "y"][:len(kinds)]
        # the loop bound n: a literal, or read from an argument's shape
        arr = [p for p, k in zip(params, kinds) if k in "vm"]
        self.nexpr = f"{arr[0]}.shape[0]" if arr and self.p(0.5) else str(self.n)
        ctx = {"env": dict(zip(params, kinds)), "idx": [], "loops": [], "scope": [],
               "params": set(params)}
        # arguments are never written in place: work on copies
        body = []
        for p_, k in zip(params, kinds):
            if k != "s":
                name = self.fresh(k)
                body.append(f"    {name} = {p_} * 1.0")
                ctx["env"][name] = k
        budget = [int(self.rng.integers(4, 12))]
        while budget[0] > 0:
            budget[0] -= 1
            body += self.stmt(ctx, 1, budget)
        body.append(f"    return {self.result(ctx)}")
        fname = "f"
        src = "\n\n\n".join(self.helper_src + [f"def {fname}({', '.join(params)}):\n" + "\n".join(body)])
        return fname, kinds, src + "\n"


class _Plain(ast.NodeTransformer):
    """`_gt(a, b)` → `a > b` (what the user would write)."""

    def visit_Call(self, node):
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id == "_gt":
            return ast.Compare(left=node.args[0], ops=[ast.Gt()], comparators=[node.args[1]])
        return node


def generate(seed, exclude=()):
    """The program of `seed` (deterministic), with constructs in `exclude` never used."""
    rng = np.random.default_rng(seed)
    g = _Gen(rng, set(exclude))
    name, kinds, instrumented = g.program()
    plain = ast.unparse(_Plain().visit(ast.parse(instrumented)))
    return RandomProgram(seed, plain + "\n", instrumented, name, kinds, g.n, g.dtype,
                         g.features)


# -- loading -----------------------------------------------------------------

_loaded = itertools.count()


class _Recorder:
    def __init__(self):
        self.path = []
        self.margin = np.inf

    def gt(self, a, b):
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        diff = a - b
        if diff.size:
            self.margin = min(self.margin, float(np.min(np.abs(diff))))
        decision = a > b
        self.path.append(tuple(np.ravel(decision)))
        return decision if decision.ndim else bool(decision)


def load(source, tag, extra=None):
    """exec `source` as a module whose text linecache knows; returns the namespace."""
    filename = f"/random_programs/{tag}_{next(_loaded)}.py"
    lines = source.splitlines(keepends=True)
    linecache.cache[filename] = (len(source), None, lines, filename)
    mod = types.ModuleType(f"random_program_{tag}")
    mod.__file__ = filename
    mod.__dict__["np"] = np
    if extra:
        mod.__dict__.update(extra)
    exec(compile(source, filename, "exec"), mod.__dict__)
    return mod.__dict__


def forget(ns):
    linecache.cache.pop(ns.get("__file__"), None)


# -- inputs and references ---------------------------------------------------

def make_args(prog, rng):
    shapes = {"s": (), "v": (prog.n,), "m": (prog.n, prog.n)}
    out = []
    for k in prog.kinds:
        a = rng.uniform(-1.2, 1.2, shapes[k])
        out.append(float(a) if k == "s" else a)
    return out


def cast(args, dtype):
    return [np.float32(a) if np.ndim(a) == 0 and dtype == "float32" else
            (a.astype(dtype) if np.ndim(a) else a) for a in args]


class Traced:
    """The instrumented program: value, branch path and smallest margin."""

    def __init__(self, prog):
        self.rec = None
        self.ns = load(prog.instrumented, f"instr{prog.seed}", {"_gt": self._gt})
        self.fn = self.ns[prog.name]

    def _gt(self, a, b):
        return self.rec.gt(a, b)

    def run(self, args):
        self.rec = _Recorder()
        with np.errstate(all="ignore"):
            val = self.fn(*[np.copy(a) if np.ndim(a) else a for a in args])
        return val, self.rec.path, self.rec.margin


def _flat_arg_list(args):
    return [np.atleast_1d(np.asarray(a, dtype=np.float64)).ravel() for a in args]


def _rebuild(args, flat):
    out = []
    for a, f in zip(args, flat):
        out.append(float(f[0]) if np.ndim(a) == 0 else f.reshape(np.shape(a)))
    return out


def fd_grad(fn, args, traced_path=None, traced=None, h=FD_STEP):
    """Central differences of scalar `fn` w.r.t. every argument, Richardson-
    extrapolated from steps h and h/2 (error O(h^4): a plain central
    difference's O(h^2) error exceeds the checks' tolerance on steep
    programs, e.g. sin of a large square); None if a perturbation changes
    the branch path."""
    coarse = _central_grad(fn, args, traced_path, traced, h)
    fine = _central_grad(fn, args, traced_path, traced, h / 2) if coarse is not None else None
    if fine is None:
        return None
    return [(4 * f - c) / 3 for f, c in zip(fine, coarse)]


def _central_grad(fn, args, traced_path, traced, h):
    flat = _flat_arg_list(args)
    grads = []
    for ai in range(len(args)):
        g = np.zeros(flat[ai].size)
        for j in range(flat[ai].size):
            vals = []
            for s in (1.0, -1.0):
                pert = [f.copy() for f in flat]
                pert[ai][j] += s * h
                pa = _rebuild(args, pert)
                if traced is not None:
                    v, path, _ = traced.run(pa)
                    if path != traced_path:
                        return None
                else:
                    v = fn(*pa)
                vals.append(float(v))
            g[j] = (vals[0] - vals[1]) / (2 * h)
        grads.append(float(g[0]) if np.ndim(args[ai]) == 0 else g.reshape(np.shape(args[ai])))
    return grads


def fd_jvp(traced, path, args, tangents, h=FD_STEP):
    """Central differences along `tangents`, Richardson-extrapolated as in
    fd_grad; None if a perturbation changes the branch path."""
    coarse = _central_jvp(traced, path, args, tangents, h)
    fine = _central_jvp(traced, path, args, tangents, h / 2) if coarse is not None else None
    return None if fine is None else (4 * fine - coarse) / 3


def _central_jvp(traced, path, args, tangents, h):
    vals = []
    for s in (1.0, -1.0):
        pa = [a + s * h * t for a, t in zip(args, tangents)]
        v, p, _ = traced.run(pa)
        if p != path:
            return None
        vals.append(float(v))
    return (vals[0] - vals[1]) / (2 * h)


# -- outcomes ----------------------------------------------------------------

OK, WRONG, REFUSED, EXCEPTION, SKIPPED = "ok", "wrong", "refused", "exception", "skipped"


class Outcome:
    def __init__(self, status, detail="", group=""):
        self.status = status
        self.detail = detail
        self.group = group

    def __repr__(self):
        return f"{self.status}: {self.group} {self.detail}"


def close(got, want, rtol, atol=None):
    got = [np.asarray(g, dtype=np.float64) for g in (got if isinstance(got, (list, tuple)) else [got])]
    want = [np.asarray(w, dtype=np.float64) for w in (want if isinstance(want, (list, tuple)) else [want])]
    if len(got) != len(want):
        return False, f"{len(got)} results, expected {len(want)}"
    for g, w in zip(got, want):
        if g.shape != w.shape:
            return False, f"shape {g.shape}, expected {w.shape}"
        scale = 1.0 + float(np.max(np.abs(w))) if w.size else 1.0
        tol = (atol if atol is not None else rtol) * scale
        if not np.all(np.abs(g - w) <= tol + rtol * np.abs(w)):
            return False, f"got {np.array2string(g, precision=6)} expected {np.array2string(w, precision=6)}"
    return True, ""


_NUM = re.compile(r"\b\d+(\.\d+)?\b")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def message_class(exc):
    """A message with names, numbers and source excerpts taken out, to group by."""
    text = str(exc).split("\n")[0]
    text = _QUOTED.sub("'…'", text)
    text = _NUM.sub("N", text)
    text = re.sub(r"/random_programs/\S+", "<prog>", text)
    return f"{type(exc).__name__}: {text[:110]}"


def where_raised(exc):
    """The innermost cotan frame of a traceback (file:function)."""
    tb = traceback.extract_tb(exc.__traceback__)
    for fr in reversed(tb):
        if any(part in fr.filename for part in ("/autodiff/", "/codegen/", "/runtime/", "/cotan/")):
            return f"{fr.filename.rsplit('/', 2)[-2]}/{fr.filename.rsplit('/', 1)[-1]}:{fr.name}"
    return tb[-1].name if tb else "?"


def classify_exception(exc):
    from cotan.errors import CotanError
    if isinstance(exc, CotanError):
        inner = exc.__cause__ or exc.__context__
        if isinstance(exc, type) or not re.search(r"LLVM|llvm|IndexError|KeyError|UnboundLocal",
                                                  str(exc).split("\n")[0]):
            return Outcome(REFUSED, str(exc)[:2000], message_class(exc))
        return Outcome(EXCEPTION, str(exc)[:2000], "in cotan error: " + message_class(exc))
    return Outcome(EXCEPTION, "".join(traceback.format_exception(exc))[-3000:],
                   f"{message_class(exc)} @ {where_raised(exc)}")


# -- the checks --------------------------------------------------------------

class Checker:
    """References for one program, computed once and shared by the checks."""

    def __init__(self, prog, rng, tries=6):
        self.prog = prog
        self.ns = load(prog.source, f"prog{prog.seed}")
        self.fn = self.ns[prog.name]
        self.traced = Traced(prog)
        self.f32 = prog.dtype == "float32"
        self.args = None
        for _ in range(tries):
            args = make_args(prog, rng)
            try:
                val, path, margin = self.traced.run(args)
            except Exception:
                continue
            if not np.isfinite(val) or abs(val) > 1e6 or margin < MARGIN:
                continue
            g = fd_grad(None, args, path, self.traced)
            if g is None or not all(np.all(np.isfinite(x)) for x in g) or \
                    max(float(np.max(np.abs(x))) for x in g) > 1e6:
                continue
            # float32 programs run on float32 inputs, whose decisions must agree
            if self.f32:
                v32, p32, m32 = self.traced.run(cast(args, "float32"))
                if p32 != path:
                    continue
            self.args, self.path, self.fd = args, path, g
            break
        if self.args is None:
            return
        self.call_args = cast(self.args, prog.dtype)
        with np.errstate(all="ignore"):
            self.value = self.fn(*self._copies(self.call_args))
        if self._copy_order_dependent():
            # NumPy's own answer is not the program's meaning here: set
            # aside, counted apart (bench/random_programs.py reports it)
            self.args = None
            prog.set_aside = "numpy-overlap"
            return
        self.argnums = tuple(range(len(prog.kinds)))
        self.tol = 2e-3 if self.f32 else 1e-5
        self.rng = rng
        self._lanes = None

    def _copy_order_dependent(self):
        """Whether NumPy's result depends on the order it copies in: an
        assignment `m[2] = m[:, 3]` from a view that overlaps what it writes
        with other strides is not done as if the right side were copied
        first (NumPy reverses a 1-D copy by address, which is right only for
        equal strides; numpy#26844 is one report of the class), while cotan's
        value semantics give the as-if-copied result.  Detected by running the
        program again with every subscript assignment's right side copied."""
        tree = ast.parse(self.prog.source)

        class CopyRight(ast.NodeTransformer):
            def visit_Assign(self, node):
                if any(isinstance(t, ast.Subscript) for t in node.targets):
                    node.value = ast.Call(ast.Attribute(ast.Name("np", ast.Load()), "copy",
                                                        ast.Load()), [node.value], [])
                return node

            def visit_AugAssign(self, node):
                if isinstance(node.target, ast.Subscript):
                    node.value = ast.Call(ast.Attribute(ast.Name("np", ast.Load()), "copy",
                                                        ast.Load()), [node.value], [])
                return node

        copied = ast.unparse(ast.fix_missing_locations(CopyRight().visit(tree)))
        if copied == ast.unparse(ast.parse(self.prog.source)):
            return False
        ns = load(copied, f"copied{self.prog.seed}")
        try:
            with np.errstate(all="ignore"):
                other = ns[self.prog.name](*self._copies(self.call_args))
        finally:
            forget(ns)
        return not np.array_equal(np.asarray(other), np.asarray(self.value), equal_nan=True)

    def _copies(self, args):
        return [np.copy(a) if np.ndim(a) else a for a in args]

    def usable(self):
        return self.args is not None

    def _grad_ref(self):
        return self.fd if len(self.fd) > 1 else self.fd[0]

    def lanes(self):
        """BATCH inputs for x (others broadcast), each with a stable path."""
        if self._lanes is None:
            lanes = []
            for _ in range(BATCH * 4):
                a = make_args(self.prog, self.rng)[0]
                args = [a] + list(self.args[1:])
                try:
                    val, path, margin = self.traced.run(args)
                except Exception:
                    continue
                if not np.isfinite(val) or abs(val) > 1e6 or margin < MARGIN:
                    continue
                g = fd_grad(None, args, path, self.traced)
                if g is None:
                    continue
                if self.f32 and self.traced.run(cast(args, "float32"))[1] != path:
                    continue
                lanes.append((a, val, g))
                if len(lanes) == BATCH:
                    break
            self._lanes = lanes if len(lanes) == BATCH else []
        return self._lanes

    def _in_axes(self):
        return (0,) + (None,) * (len(self.prog.kinds) - 1)

    def _batched_x(self, lanes):
        return cast([np.stack([np.asarray(l[0]) for l in lanes])], self.prog.dtype)[0]

    # each check returns an Outcome
    def check(self, name):
        import cotan
        try:
            with np.errstate(all="ignore"):
                return getattr(self, "check_" + name)(cotan)
        except RecursionError as e:
            return Outcome(EXCEPTION, str(e)[:500], "RecursionError")
        except Exception as e:
            return classify_exception(e)

    def _verdict(self, got, want, tol=None):
        good, why = close(got, want, tol or self.tol)
        return Outcome(OK) if good else Outcome(WRONG, why)

    def _grad_want(self):
        if not self.f32:
            return self._grad_ref()
        return self._grad_ref()

    def check_grad(self, cotan):
        g = cotan.grad(self.fn, argnums=self.argnums if len(self.argnums) > 1 else 0)(
            *self._copies(self.call_args))
        self.eager_grad = g
        return self._verdict(list(g) if len(self.argnums) > 1 else g, self._grad_want(),
                             max(self.tol, 1e-4))

    def check_jvp(self, cotan):
        tangents = [np.asarray(self.rng.uniform(-1, 1, np.shape(a))) for a in self.args]
        want_t = fd_jvp(self.traced, self.path, self.args,
                        [float(t) if np.ndim(a) == 0 else t for a, t in zip(self.args, tangents)])
        if want_t is None:
            return Outcome(SKIPPED, "path changes along the tangent")
        tan = cast([float(t) if np.ndim(a) == 0 else t for a, t in zip(self.args, tangents)],
                   self.prog.dtype)
        out, tout = cotan.jvp(self.fn, tuple(self._copies(self.call_args)), tuple(tan))
        return self._verdict([out, tout], [self.value, want_t], max(self.tol, 1e-4))

    def check_jit(self, cotan):
        got = cotan.jit(self.fn)(*self._copies(self.call_args))
        return self._verdict(got, self.value, 1e-4 if self.f32 else 1e-9)

    def check_jit_grad(self, cotan):
        gf = cotan.grad(self.fn, argnums=self.argnums if len(self.argnums) > 1 else 0)
        g = cotan.jit(gf)(*self._copies(self.call_args))
        return self._verdict(list(g) if len(self.argnums) > 1 else g, self._grad_want(),
                             max(self.tol, 1e-4))

    def check_vmap(self, cotan):
        lanes = self.lanes()
        if not lanes:
            return Outcome(SKIPPED, "no stable lanes")
        xs = self._batched_x(lanes)
        rest = self._copies(self.call_args[1:])
        got = cotan.vmap(self.fn, in_axes=self._in_axes())(xs, *rest)
        want = np.array([self.fn(*self._copies(cast([l[0]] + list(self.args[1:]),
                                                    self.prog.dtype))) for l in lanes])
        return self._verdict(got, want, 1e-4 if self.f32 else 1e-9)

    def check_vmap_grad(self, cotan):
        lanes = self.lanes()
        if not lanes:
            return Outcome(SKIPPED, "no stable lanes")
        xs = self._batched_x(lanes)
        rest = self._copies(self.call_args[1:])
        got = cotan.vmap(cotan.grad(self.fn), in_axes=self._in_axes())(xs, *rest)
        want = np.stack([np.asarray(l[2][0]) for l in lanes])
        return self._verdict(got, want, max(self.tol, 1e-4))

    def check_grad_grad(self, cotan):
        """d/dx of <grad f(x), w> for a fixed w, against differences of the eager gradient."""
        gf = cotan.grad(self.fn)
        if np.ndim(self.args[0]) == 0 and len(self.args) == 1:
            target = gf
        else:
            w = self.rng.uniform(-1, 1, np.shape(self.args[0]))
            extra = {"cotan": cotan, "_w": w, "_f": self.fn}
            params = ", ".join(["x", "y"][:len(self.args)])
            src = (f"def gsum({params}):\n"
                   f"    return np.sum(cotan.grad(_f)({params}) * _w)\n")
            target = load(src, f"gg{self.prog.seed}", extra)["gsum"]
        got = cotan.grad(target)(*self._copies(self.call_args))
        ref_fn = lambda *a: target(*cast(list(a), self.prog.dtype))  # noqa: E731
        h = 1e-4 if self.f32 else 1e-5
        # the eager gradient's own branch path must not change under the step
        want = fd_grad(None, self.args, self.path, self.traced, h=h)
        if want is None:
            return Outcome(SKIPPED, "path changes")
        want = fd_grad(ref_fn, self.args, None, None, h=h)[0]
        return self._verdict(got, want, 1e-2 if self.f32 else 1e-4)


def check_program(prog, transforms=TRANSFORMS, seed=None):
    """{transform: Outcome} for `prog`, or None when no valid inputs were found."""
    rng = np.random.default_rng(prog.seed if seed is None else seed)
    ch = Checker(prog, rng)
    try:
        if not ch.usable():
            return None
        return {t: ch.check(t) for t in transforms}
    finally:
        forget(ch.ns)
        forget(ch.traced.ns)


def describe(prog, outcomes):
    lines = [f"seed {prog.seed} ({prog.dtype}, args {prog.kinds}, n={prog.n}):", prog.source]
    for t, o in outcomes.items():
        if o.status not in (OK, SKIPPED):
            lines.append(f"  {t}: {o.status} {o.group}\n    " + o.detail.replace("\n", "\n    ")[:1500])
    return "\n".join(lines)


if __name__ == "__main__":
    for s in map(int, sys.argv[1:]) or [0]:
        print(generate(s).source)


# -- shrinking ---------------------------------------------------------------

def _statement_slots(tree):
    """(body list, index) of every statement, innermost last."""
    slots = []
    for node in ast.walk(tree):
        for field in ("body", "orelse"):
            body = getattr(node, field, None)
            if isinstance(body, list):
                for i in range(len(body)):
                    slots.append((node, field, i))
    return slots


def _without(source, k):
    tree = ast.parse(source)
    slots = _statement_slots(tree)
    if k >= len(slots):
        return None
    node, field, i = slots[k]
    body = getattr(node, field)
    if isinstance(body[i], ast.FunctionDef) or \
            isinstance(body[i], ast.Return) and isinstance(node, ast.FunctionDef):
        return None
    if isinstance(body[i], ast.Pass):
        return None
    if isinstance(body[i], ast.Assign) and re.fullmatch(r"(k\d+) = \1 \+ 1",
                                                          ast.unparse(body[i])):
        return None        # a while loop's counter: removing it would never end
    del body[i]
    if not body and not isinstance(node, ast.Module):
        if field == "orelse":
            pass
        else:
            body.append(ast.Pass())
    return ast.unparse(tree) + "\n"


def shrink(prog, transform, status=None, group=None, rounds=40):
    """A smaller program (statements deleted) that still fails `transform` the same way."""
    def fails(p):
        try:
            res = check_program(p, (transform,))
        except Exception:
            return False
        if not res:
            return False
        o = res[transform]
        return o.status == (status or o.status) and o.status not in (OK, SKIPPED) and \
            (group is None or o.group == group)

    cur = prog
    if status is None or group is None:
        o = check_program(prog, (transform,))[transform]
        status, group = o.status, o.group
    for _ in range(rounds):
        changed = False
        k = 0
        while True:
            cand_src = _without(cur.instrumented, k)
            if cand_src is None:
                if k >= len(_statement_slots(ast.parse(cur.instrumented))):
                    break
                k += 1
                continue
            plain = ast.unparse(_Plain().visit(ast.parse(cand_src))) + "\n"
            cand = RandomProgram(cur.seed, plain, cand_src, cur.name, cur.kinds, cur.n,
                                 cur.dtype, cur.features)
            if fails(cand):
                cur, changed = cand, True
            else:
                k += 1
        if not changed:
            break
    return cur
