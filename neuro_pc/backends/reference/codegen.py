"""Generate the NumPy source of one presentation window of a circuit.

The generated function is the executable form of the semantics in
:mod:`neuro_pc.ir.circuit`, written out for one circuit so that a step costs a
few NumPy calls and no dictionary look-ups::

    def window(S, W, X, train, learn, rec, TF):
        <load every state variable and weight into a local>
        for tw in range(T):
            # (1) ports from the previous step's outputs (one-step delay)
            h__ff = x__r @ W_W1.T
            # (2) populations: streams, then the update statements in order
            x__r = X_x
            h__a = h__ff
            ...
            # (3) every-step rules, if any
        # (3) window-end rules (if learn): all dW from the settled state, then applied
        <store the locals back into S>

State arrays are ``(batch, n)``; a weight ``(n_target, n_source)``; batched rules
average the per-sample outer products over the batch.

``wiring`` (both generators): ``{projection: (lo, hi)}`` for fixed projections
whose weights are exact 0/1 wiring (:func:`fixed_wiring`): the identity
(``(None, None)``: the term is the source itself) or a selection of the source's
units ``lo:hi`` (the term is that slice). ``src @ I.T`` and ``src`` are the same
numbers for every finite ``src`` (each output is one product by 1 plus products
by 0), so this changes the speed, not the result; the simulator checks before
every window that those weights are still the wiring.
"""
from __future__ import annotations

from neuro_pc.ir import Circuit, translate
from neuro_pc.ir.functions import NUMPY_FUNCTIONS
from neuro_pc.rules import parse_rule


def var_local(pop: str, var: str) -> str:
    return f"{pop}__{var}"


def weight_local(proj: str) -> str:
    return f"W_{proj}"


def _fn(name: str) -> str:
    return f"F_{name}"


def function_globals() -> dict:
    """The globals the generated source needs."""
    return {**{_fn(k): v for k, v in NUMPY_FUNCTIONS.items()}, "F__wired": wired,
            "F__accumulate": accumulate}


def accumulate(w, a, b) -> None:
    """``w += a.T @ b`` in place: one BLAS ``gemm`` with ``beta = 1`` writing into
    ``w`` (no product-sized temporary, no second pass over ``w``), for a
    C-contiguous float32/float64 ``w`` and operands of its dtype; otherwise
    NumPy's ``w += a.T @ b``. The same numbers either way up to the last bit (one
    rounding of the product, one of the sum; bit for bit on the machines
    measured, the tests allow the last bit)."""
    gemm = _gemm(w.dtype) if w.ndim == 2 and w.flags.c_contiguous and \
        a.dtype == w.dtype and b.dtype == w.dtype else None
    if gemm is None:
        w += a.T @ b
        return
    # in BLAS's column-major terms w is wᵀ: wᵀ += bᵀ a, with bᵀ and aᵀ column-major
    c = w.T
    out = gemm(1.0, b.T, a.T, beta=1.0, c=c, trans_b=1, overwrite_c=1)
    if out is not c:   # pragma: no cover - f2py copied c after all
        w[...] = out.T


_GEMM: dict = {}


def _gemm(dtype):
    """SciPy's BLAS ``gemm`` for ``dtype`` (float32, float64), else None; SciPy is
    imported on the first update, not with the package."""
    if not _GEMM:
        import numpy as np
        from scipy.linalg import blas

        _GEMM.update({np.dtype(np.float32): blas.sgemm, np.dtype(np.float64): blas.dgemm})
    return _GEMM.get(dtype)


def wired(src, w, lo=None, hi=None):
    """``src @ w.T`` for a ``w`` that is fixed 0/1 wiring (:func:`fixed_wiring`):
    ``src`` itself (``lo`` None: the identity) or its units ``lo:hi``, in the
    product's dtype (a boolean source becomes numbers, as in the product)."""
    import numpy as np

    if np.ndim(src) != 2:
        return src @ w.T
    # a slice is copied: a strided operand would take another BLAS path in the
    # products that read it, and their sums another order (last-bit differences)
    out = src if lo is None else np.ascontiguousarray(src[:, lo:hi])
    return out if out.dtype == w.dtype else out.astype(np.result_type(out.dtype, w.dtype))


def conv_local(proj: str) -> str:
    return f"C_{proj}"


def conv_globals(circuit: Circuit, cache: bool = True) -> dict:
    """``{C_<projection>: ConvOp}`` for every convolution of ``circuit`` (the fast
    convolution the generated source calls; tied projections use their
    projection's)."""
    from neuro_pc.ir.conv import ConvOp

    return {conv_local(p.name): ConvOp(p.conv, cache=cache) for p in circuit.projections
            if p.conv is not None}


def _port_expr(circuit: Circuit, proj, wiring=None) -> str:
    src = var_local(proj.source, circuit.source_variable(proj))
    if proj.tied is None and proj.conv is not None:
        term = f"{conv_local(proj.name)}.apply({src}, {weight_local(proj.name)})"
    elif wiring and proj.name in wiring:   # fixed 0/1 wiring: the product is a copy / slice
        lo, hi = wiring[proj.name]
        term = f"F__wired({src}, {weight_local(proj.name)}, {lo}, {hi})"
    elif proj.tied is None:
        term = f"{src} @ {weight_local(proj.name)}.T"
    else:
        base = weight_local(proj.tied.to)
        if proj.tied.fn == "sign":
            base = f"F_sign({base})"
        conv = circuit.conv_of(proj)
        if conv is not None:   # the tied kernel, the other way if transposed
            term = f"{conv_local(proj.tied.to)}.apply({src}, {base}, {conv.transpose!r})"
        else:
            # effective matrix M = fn(W_to).T if transpose; port = src @ M.T
            term = f"{src} @ {base}" if proj.tied.transpose else f"{src} @ {base}.T"
        if proj.tied.scale != 1.0:
            term = f"({term}) * {float(proj.tied.scale)!r}"
    if proj.scale != 1.0:
        term = f"({term}) * {float(proj.scale)!r}"
    return term


def _parsed(proj):
    rule = proj.rule
    return parse_rule(rule.text, rule.params, where=f"rule of projection {proj.name!r}",
                      allow_nonlocal=rule.baseline)


def fused(proj, masked: bool) -> bool:
    """Whether ``proj``'s update is applied by :func:`accumulate` without being
    formed: a rule of one term ``coef * post.X * pre.Y`` (no weight factor), no
    transform, no mask, not a convolution."""
    if proj.conv is not None or masked or proj.rule.transforms:
        return False
    terms = _parsed(proj).terms
    return len(terms) == 1 and bool(terms[0].post and terms[0].pre) and not terms[0].syn


def rule_lines(circuit: Circuit, proj, indent: str, fuse: bool = False) -> list[str]:
    """Source lines computing ``dW_<proj>`` (the batch-mean update) from the locals;
    ``fuse`` (a :func:`fused` projection): its two factors ``dA_<proj>``,
    ``dB_<proj>`` instead (``dW = dAᵀ dB``), for :func:`apply_lines`."""
    rule = proj.rule
    parsed = _parsed(proj)
    consts = {k: repr(float(v)) for k, v in rule.params.items()}

    def side(text, pop):
        tree = compile_expr(text)
        return "(" + translate(tree, lambda n: consts.get(n, var_local(pop, n))
                               if n not in ("tw", "train", "dt") else n, _fn) + ")"

    def coef(text):
        return "(" + translate(compile_expr(text), lambda n: consts.get(n, n), _fn) + ")"

    def syn(text):
        return "(" + translate(compile_expr(text), lambda n: weight_local(proj.name)
                               if n == "w" else consts.get(n, n), _fn) + ")"

    out = f"dW_{proj.name}"
    lines = []
    if proj.conv is not None:
        return _conv_rule_lines(proj, parsed, side, coef, syn, indent)
    full = False
    for k, t in enumerate(parsed.terms):
        full = full or bool((t.post and t.pre) or t.syn)
        post = side(t.post, proj.target) if t.post else None
        pre = side(t.pre, proj.source) if t.pre else None
        if post and pre:  # batch mean of outer products; the scalar (with the 1/B)
            # multiplies the smaller factor, not the (n_post, n_pre) product: one
            # pass over a weight-sized array fewer (the same numbers up to rounding)
            scale = f"({coef(t.coef)} / {post}.shape[0])"
            if circuit.population(proj.target).size <= circuit.population(proj.source).size:
                post = f"({post} * {scale})"
            else:
                pre = f"({pre} * {scale})"
            if fuse:
                return [f"{indent}dA_{proj.name} = {post}", f"{indent}dB_{proj.name} = {pre}"]
            expr = f"{post}.T @ {pre}"
        elif post:
            expr = f"{coef(t.coef)} * {post}.mean(axis=0)[:, None]"
        elif pre:
            expr = f"{coef(t.coef)} * {pre}.mean(axis=0)[None, :]"
        else:
            expr = coef(t.coef)
        if t.syn:
            expr += f" * {syn(t.syn)}"
        lines.append(f"{indent}{out} = {expr}" if k == 0 else f"{indent}{out} = {out} + {expr}")
    if not full:  # every term broadcasts: give dW the weight's shape
        lines.append(f"{indent}{out} = {out} + 0.0 * {weight_local(proj.name)}")
    return lines


def _conv_rule_lines(proj, parsed, side, coef, syn, indent) -> list[str]:
    """``dW_<proj>``, the kernel's update: per term, the batch mean of the per-position
    products summed over positions (:meth:`neuro_pc.ir.conv.ConvOp.kernel_grad`; a
    missing factor is ones, both missing the count of positions per kernel entry)."""
    out, op, w = f"dW_{proj.name}", conv_local(proj.name), weight_local(proj.name)
    lines = []
    for k, t in enumerate(parsed.terms):
        post = side(t.post, proj.target) if t.post else None
        pre = side(t.pre, proj.source) if t.pre else None
        grad = f"{op}.kernel_grad({post or 'None'}, {pre or 'None'}, {w}.dtype)"
        batch = f"{post or pre}.shape[0]"
        expr = f"({coef(t.coef)} / {batch}) * {grad}" if (post or pre) else \
            f"{coef(t.coef)} * {grad}"
        if t.syn:
            expr += f" * {syn(t.syn)}"
        lines.append(f"{indent}{out} = {expr}" if k == 0 else f"{indent}{out} = {out} + {expr}")
    return lines


def compile_expr(text: str):
    from neuro_pc.ir import parse_expression

    return parse_expression(text)


def apply_lines(proj, indent: str, masked: bool) -> list[str]:
    """Source lines applying ``dW`` (transforms, mask) to the weight in place (a
    :func:`fused` projection's from its factors, with :func:`accumulate`)."""
    w, dw = weight_local(proj.name), f"dW_{proj.name}"
    if fused(proj, masked):
        return [f"{indent}F__accumulate({w}, dA_{proj.name}, dB_{proj.name})"]
    lines = []
    for t in proj.rule.transforms:
        if t == "muon":
            lines.append(f"{indent}{dw} = TF[{('muon', proj.name)!r}]({dw})")
    if masked:
        lines.append(f"{indent}{dw} = {dw} * TF[{('mask', proj.name)!r}]")
    lines.append(f"{indent}{w} += {dw}")
    for t in proj.rule.transforms:
        if t in ("unit_columns", "unit_rows"):
            lines.append(f"{indent}TF[{(t, proj.name)!r}]({w})")
    return lines


def fixed_wiring(circuit: Circuit, weights: dict, masked=frozenset()) -> dict:
    """``{projection: (lo, hi)}`` for every projection that no rule changes (not
    tied, not masked, scale 1) whose weight matrix is exactly the identity
    (``(None, None)``) or selects the consecutive source units ``lo:hi``
    (``W[i, lo + i] = 1``, every other entry 0): the port term is then a copy
    or a slice of the source instead of a matrix product."""
    import numpy as np

    out = {}
    for proj in circuit.projections:
        if proj.rule is not None or proj.tied is not None or proj.conv is not None \
                or proj.name in masked \
                or proj.scale != 1.0 or proj.name not in weights:
            continue
        w = np.asarray(weights[proj.name])
        rows, cols = w.shape
        if rows > cols or rows == 0:
            continue
        first = np.flatnonzero(w[0] != 0)
        if len(first) != 1:
            continue
        lo = int(first[0])
        if lo + rows > cols:
            continue
        want = np.zeros_like(w)
        want[np.arange(rows), lo + np.arange(rows)] = 1
        if np.array_equal(w, want):
            out[proj.name] = (None, None) if (lo == 0 and rows == cols) else (lo, lo + rows)
    return out


def generate_window(circuit: Circuit, masked: frozenset[str] = frozenset(),
                    record: tuple[tuple[str, str], ...] = (), wiring=None) -> str:
    """Source of ``window(S, W, X, train, rec, TF)`` for ``circuit``.

    ``record``: ``(population, variable)`` pairs appended to ``rec`` after every
    step (as tuples of arrays; arrays are never modified in place, so no copies).
    """
    T = circuit.schedule.window
    lines = ["def window(S, W, X, train, learn, rec, TF):"]
    I1, I2 = "    ", "        "
    for pop in circuit.populations:
        for v in pop.variables:
            lines.append(f"{I1}{var_local(pop.name, v)} = S[{pop.name + '.' + v!r}]")
    for proj in circuit.stored:
        lines.append(f"{I1}{weight_local(proj.name)} = W[{proj.name!r}]")
    for s in circuit.streams:
        lines.append(f"{I1}X_{s} = X[{s!r}]")
    lines.append(f"{I1}dt = {float(circuit.schedule.dt)!r}")
    step_rules = [p for p in circuit.plastic if p.rule.every_step]
    end_rules = [p for p in circuit.plastic if not p.rule.every_step]
    # Loop-invariant port terms (an optimisation that keeps the arithmetic):
    # while no rule changes weights inside the window, a term whose source is
    # streamed (held for the whole window from step 0 on) or static (never
    # assigned) has the same value at every step but step 0 (which still sees
    # the previous window's source); compute it once instead of T times.
    hoisted: dict[str, tuple[str, bool]] = {}   # projection -> (local, refresh at tw 0)
    if not step_rules:
        for proj in circuit.projections:
            src = circuit.population(proj.source)
            var = circuit.source_variable(proj)
            assigned = {st.target for st in src.statements()}
            if var in src.streams or var not in assigned:
                hoisted[proj.name] = (f"H_{proj.name}", var in src.streams)
                lines.append(f"{I1}H_{proj.name} = {_port_expr(circuit, proj, wiring)}")
    lines.append(f"{I1}for tw in range({T}):")
    # (1) ports
    for pop in circuit.populations:
        for port in pop.ports:
            projs = circuit.projections_into(pop.name, port)
            rhs = " + ".join(hoisted[p.name][0] if p.name in hoisted else
                             _port_expr(circuit, p, wiring) for p in projs) if projs else "0.0"
            lines.append(f"{I2}{var_local(pop.name, port)} = {rhs}")
    # (2) populations
    for pop in circuit.populations:
        for var, stream in pop.streams.items():
            lines.append(f"{I2}{var_local(pop.name, var)} = X_{stream}")
        params = {k: repr(float(v)) for k, v in pop.params.items()}
        for st in pop.statements():
            rhs = translate(st.expr, lambda n: params.get(n) or (
                n if n in ("tw", "train", "dt") else var_local(pop.name, n)), _fn)
            lines.append(f"{I2}{var_local(pop.name, st.target)} = {rhs}")
    refresh = [name for name, (_, again) in hoisted.items() if again]
    if refresh:
        lines.append(f"{I2}if tw == 0:")
        lines += [f"{I2}{I1}H_{name} = "
                  f"{_port_expr(circuit, circuit.projection(name), wiring)}"
                  for name in refresh]
    # (3) every-step plasticity (training only)
    if step_rules:
        lines.append(f"{I2}if learn:")
        for p in step_rules:
            lines += rule_lines(circuit, p, I2 + I1, fused(p, p.name in masked))
        for p in step_rules:
            lines += apply_lines(p, I2 + I1, p.name in masked)
    if record:
        lines.append(f"{I2}if rec is not None:")
        lines.append(f"{I2}{I1}rec.append(({', '.join(var_local(a, b) for a, b in record)},))")
    # (3) window-end plasticity (training only)
    return "\n".join(lines + _window_end_lines(circuit, end_rules, masked)) + "\n"


def _window_end_lines(circuit: Circuit, end_rules, masked) -> list[str]:
    """The window's end, in both window generators: the window-end rules (when
    learning) and the state written back."""
    I1 = "    "
    lines = []
    if end_rules:
        lines.append(f"{I1}if learn:")
        for p in end_rules:
            lines += rule_lines(circuit, p, I1 + I1, fused(p, p.name in masked))
        for p in end_rules:
            lines += apply_lines(p, I1 + I1, p.name in masked)
    for pop in circuit.populations:
        for v in pop.variables:
            lines.append(f"{I1}S[{pop.name + '.' + v!r}] = {var_local(pop.name, v)}")
    return lines


def generate_updates(circuit: Circuit) -> str:
    """Source of ``updates(S, W) -> {projection: dW}``: every rule's update from
    the current state, not applied (for alignment analysis)."""
    lines = ["def updates(S, W):"]
    I1 = "    "
    for pop in circuit.populations:
        for v in pop.variables:
            lines.append(f"{I1}{var_local(pop.name, v)} = S[{pop.name + '.' + v!r}]")
    for proj in circuit.stored:
        lines.append(f"{I1}{weight_local(proj.name)} = W[{proj.name!r}]")
    lines.append(f"{I1}tw, train, dt = {circuit.schedule.window - 1}, 1.0, "
                 f"{float(circuit.schedule.dt)!r}")
    for p in circuit.plastic:
        lines += rule_lines(circuit, p, I1)
    lines.append(f"{I1}return {{{', '.join(f'{p.name!r}: dW_{p.name}' for p in circuit.plastic)}}}")
    return "\n".join(lines) + "\n"


# -- the unrolled window: the same arithmetic, without the work nobody reads ------------------
#
# The loop above is the semantics written out. ``generate_window_unrolled``
# emits the same statements with the same operands, in the same order, for
# each step of the window (``tw`` a constant), but leaves out two kinds of
# work that cannot change any result:
#
# * **dead values**: a port, a projection term or a statement whose value at
#   step ``t`` is read by nothing that reaches the end of the window (every
#   state variable at the last step, which the rules read and ``S`` keeps).
#   In a layered circuit the first steps of a window mostly compute values
#   that the one-step delays never carry to the end: FA's hidden drive at
#   steps 0 and 1, the output's at steps 0-2.
# * **unchanged values**: a value equal to the one already held in its local
#   because every input is the same as one step earlier (a streamed input is
#   the same array from step 0 on; a port whose source did not change; no rule
#   changes weights inside the window). It is not recomputed; the local keeps
#   the array, which is never modified in place.
#
# Every computed value is therefore bit-for-bit the value the loop computes
# (tests/backends/test_reference_fast.py runs both on many circuits). The loop
# is kept for recording (every step is observed) and for every-step rules
# (weights change inside the window).

def _names(expr) -> frozenset[str]:
    """Every name an expression reads (not the function names)."""
    import ast

    called = {id(n.func) for n in ast.walk(expr) if isinstance(n, ast.Call)}
    return frozenset(n.id for n in ast.walk(expr) if isinstance(n, ast.Name)
                     and id(n) not in called)


_SCALARS = frozenset({"tw", "train", "dt"})


def specialize(expr, tw: int, train: float | None, params: dict, dt: float,
               arrays: frozenset[str] = frozenset()):
    """``expr`` for one step: ``tw`` (and ``train``, when given) and the
    population's ``params`` and ``dt`` written as the numbers they are,
    sub-expressions of numbers alone evaluated (as Python evaluates them in the
    loop: the same scalars, the same operations, the same order), and a
    ``where`` whose condition is then a number replaced by the branch it
    selects - when that branch reads one of ``arrays`` (the population's
    variables and its ports that projections drive: ``(batch, size)`` arrays of
    the simulator's dtype), so that it has the shape and dtype ``where`` would
    return."""
    import ast
    import copy
    import math

    consts = {"tw": tw, "dt": float(dt), **{k: float(v) for k, v in params.items()}}
    if train is not None:
        consts["train"] = float(train)
    tree = copy.deepcopy(expr)

    class Fold(ast.NodeTransformer):
        def visit_Name(self, node):
            if node.id in consts and not getattr(node, "_fn", False):
                return ast.copy_location(ast.Constant(consts[node.id]), node)
            return node

        def visit_Call(self, node):
            node.func._fn = True
            node.args = [self.visit(a) for a in node.args]
            if node.func.id == "where" and len(node.args) == 3 and \
                    isinstance(node.args[0], ast.Constant):
                chosen = node.args[1] if node.args[0].value != 0 else node.args[2]
                if _names(ast.Expression(chosen)) & arrays:
                    return chosen
            return node

        def generic_visit(self, node):
            node = super().generic_visit(node)
            if isinstance(node, (ast.BinOp, ast.UnaryOp, ast.Compare, ast.BoolOp)) and all(
                    isinstance(c, ast.Constant) for c in ast.iter_child_nodes(node)
                    if isinstance(c, ast.expr)):
                try:
                    value = eval(compile(ast.Expression(node), "<fold>", "eval"), {}, {})
                except (ArithmeticError, ValueError):
                    return node
                if isinstance(value, (bool, int, float)) and not (
                        isinstance(value, float) and not math.isfinite(value)):
                    return ast.copy_location(ast.Constant(value), node)
            return node

    return ast.fix_missing_locations(Fold().visit(tree))



class _Window:
    """The dataflow of one window, unrolled: nodes ``(kind, key, t)`` with kind
    ``"stream"`` (key ``(pop, var)``), ``"stmt"`` (key ``(pop, index)``),
    ``"term"`` (key: projection) and ``"port"`` (key ``(pop, port)``); a value
    from before the window is ``("init", (pop, var), -1)`` and a variable that no
    statement or stream assigns is ``("static", (pop, var), -1)``."""

    def __init__(self, circuit: Circuit, train: float | None = None):
        self.c = circuit
        self.T = circuit.schedule.window
        self.stmts = {p.name: p.statements() for p in circuit.populations}
        self.params = {p.name: set(p.params) for p in circuit.populations}
        self.ports = {p.name: set(p.ports) for p in circuit.populations}
        dt = circuit.schedule.dt
        #: (pop, j, t) -> the statement's expression specialised to step t
        arrays = {p.name: frozenset(p.variables) | {
            port for port in p.ports if circuit.projections_into(p.name, port)}
            for p in circuit.populations}
        self.expr = {(p.name, j, t): specialize(st.expr, t, train, p.params, dt,
                                                arrays[p.name])
                     for p in circuit.populations for j, st in enumerate(self.stmts[p.name])
                     for t in range(self.T)}
        self.text = {k: ast_text(e) for k, e in self.expr.items()}
        self.memo: dict = {}
        for node in self.order():   # inputs first: no deep recursion over the steps
            self.unchanged(node)

    # which node holds variable `var` of `pop` at a point of step t
    def end_of_step(self, pop: str, var: str, t: int):
        """The node whose value ``pop.var`` has at the end of step ``t``."""
        if t < 0:
            return ("init", (pop, var), -1) if self._assigned(pop, var) else \
                ("static", (pop, var), -1)
        stmts = self.stmts[pop]
        for j in range(len(stmts) - 1, -1, -1):
            if stmts[j].target == var:
                return ("stmt", (pop, j), t)
        if var in self.c.population(pop).streams:
            return ("stream", (pop, var), t)
        return ("static", (pop, var), -1)

    def _assigned(self, pop, var) -> bool:
        return var in self.c.population(pop).streams or \
            any(st.target == var for st in self.stmts[pop])

    def before_stmt(self, pop: str, j: int, name: str, t: int):
        """The node a statement ``j`` of ``pop`` at step ``t`` reads for ``name``."""
        if name in self.ports[pop]:
            return ("port", (pop, name), t)
        stmts = self.stmts[pop]
        for k in range(j - 1, -1, -1):
            if stmts[k].target == name:
                return ("stmt", (pop, k), t)
        if name in self.c.population(pop).streams:
            return ("stream", (pop, name), t)
        return self.end_of_step(pop, name, t - 1)

    def inputs(self, node) -> list:
        kind, key, t = node
        if kind == "stmt":
            pop, j = key
            reads = _names(self.expr[(pop, j, t)]) - _SCALARS
            return [self.before_stmt(pop, j, n, t) for n in sorted(reads)
                    if n not in self.params[pop]]
        if kind == "term":
            proj = self.c.projection(key)
            return [self.end_of_step(proj.source, self.c.source_variable(proj), t - 1)]
        if kind == "port":
            pop, port = key
            return [("term", p.name, t) for p in self.c.projections_into(pop, port)]
        return []   # stream, init, static

    def reads_tw(self, node) -> bool:
        """Whether a statement differs from itself one step earlier (it reads
        ``tw``, or specialises differently)."""
        kind, key, t = node
        if kind != "stmt":
            return False
        k = (key[0], key[1], t)
        return "tw" in _names(self.expr[k]) or self.text[k] != self.text[(key[0], key[1], t - 1)]

    def unchanged(self, node) -> bool:
        """Whether ``node`` has the value of the same node one step earlier
        (memoised; :meth:`order` lists the nodes so that inputs come first)."""
        if node not in self.memo:
            self.memo[node] = self._unchanged(node)
        return self.memo[node]

    def order(self):
        """Every node, step by step in program order (a node's inputs before it)."""
        c = self.c
        for t in range(self.T):
            for pop in c.populations:
                for port in pop.ports:
                    for p in c.projections_into(pop.name, port):
                        yield ("term", p.name, t)
                    yield ("port", (pop.name, port), t)
            for pop in c.populations:
                for var in pop.streams:
                    yield ("stream", (pop.name, var), t)
                for j in range(len(self.stmts[pop.name])):
                    yield ("stmt", (pop.name, j), t)

    def _unchanged(self, node) -> bool:
        kind, key, t = node
        if kind == "static":
            return True
        if kind == "init" or t <= 0 or self.reads_tw(node):
            return False
        if kind == "stream":
            return True
        return all(self.same_as_before(m) for m in self.inputs(node))

    def same_as_before(self, m) -> bool:
        return m[0] == "static" or (m[0] != "init" and m[2] >= 0 and self.unchanged(m))

    def live(self) -> set:
        roots = [self.end_of_step(p.name, v, self.T - 1)
                 for p in self.c.populations for v in p.variables]
        seen, todo = set(), list(roots)
        while todo:
            n = todo.pop()
            if n in seen:
                continue
            seen.add(n)
            todo.extend(self.inputs(n))
        return seen


def ast_text(expr) -> str:
    import ast

    return ast.unparse(expr)


def generate_window_unrolled(circuit: Circuit, masked: frozenset[str] = frozenset(),
                             train: float | None = None, wiring=None) -> str:
    """Source of ``window(S, W, X, train, learn, rec, TF)``: the loop of
    :func:`generate_window` unrolled over the window's steps, without dead and
    unchanged values (see above). ``train`` (1.0 or 0.0): the function is for
    that value of the ``train`` scalar only (it is written in as a number), so
    that a ``where`` on it selects its branch once, here. Only for circuits
    without every-step rules, and without recording (``rec`` is ignored)."""
    if any(p.rule.every_step for p in circuit.plastic):
        raise ValueError("the unrolled window needs weights that are constant inside the "
                         "window (no every-step rule); use generate_window")
    g = _Window(circuit, train)
    live = g.live()
    unchanged = g.unchanged

    def equal(held, node) -> bool:
        """Whether the local holding node ``held`` holds ``node``'s value."""
        if held is None or held[:2] != node[:2] or held[2] > node[2]:
            return False
        return all(unchanged((node[0], node[1], s)) for s in range(held[2] + 1, node[2] + 1))

    T = g.T
    lines = ["def window(S, W, X, train, learn, rec, TF):"]
    I1 = "    "
    for pop in circuit.populations:
        for v in pop.variables:
            lines.append(f"{I1}{var_local(pop.name, v)} = S[{pop.name + '.' + v!r}]")
    for proj in circuit.stored:
        lines.append(f"{I1}{weight_local(proj.name)} = W[{proj.name!r}]")
    for s in circuit.streams:
        lines.append(f"{I1}X_{s} = X[{s!r}]")
    lines.append(f"{I1}dt = {float(circuit.schedule.dt)!r}")
    # what each local holds: state locals start with the value from before the window
    holds: dict[str, tuple] = {}
    for pop in circuit.populations:
        for v in pop.variables:
            holds[var_local(pop.name, v)] = g.end_of_step(pop.name, v, -1)

    def emit(node, local: str, rhs: str, out: list) -> None:
        if node not in live or equal(holds.get(local), node):
            return
        out.append(f"{I1}{local} = {rhs}")
        holds[local] = node

    for t in range(T):
        step = []
        # (1) ports, from the previous step's values (each projection a term)
        for pop in circuit.populations:
            for port in pop.ports:
                projs = circuit.projections_into(pop.name, port)
                for p in projs:
                    emit(("term", p.name, t), f"T_{p.name}", _port_expr(circuit, p, wiring),
                         step)
                rhs = " + ".join(f"T_{p.name}" for p in projs) if projs else "0.0"
                emit(("port", (pop.name, port), t), var_local(pop.name, port), rhs, step)
        # (2) populations: streams, then the statements in order
        for pop in circuit.populations:
            for var, stream in pop.streams.items():
                emit(("stream", (pop.name, var), t), var_local(pop.name, var), f"X_{stream}",
                     step)
            params = {k: repr(float(v)) for k, v in pop.params.items()}
            for j, st in enumerate(g.stmts[pop.name]):
                node = ("stmt", (pop.name, j), t)
                if node not in live:
                    continue
                rhs = translate(g.expr[(pop.name, j, t)], lambda n: params.get(n) or (
                    n if n in ("tw", "train", "dt") else var_local(pop.name, n)), _fn)
                emit(node, var_local(pop.name, st.target), rhs, step)
        if step:
            lines.append(f"{I1}tw = {t}")
            lines += step
    lines.append(f"{I1}tw = {T - 1}")
    return "\n".join(lines + _window_end_lines(circuit, list(circuit.plastic), masked)) + "\n"
