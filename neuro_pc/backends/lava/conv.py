"""Convolutions on Lava: a conv projection as Lava's own ``Conv`` process.

Which projections: every projection with convolutional connectivity
(``circuit.conv_of(proj)``: its own ``Conv``, or tied to a convolution) whose
:func:`~neuro_pc.ir.conv.correlation_form` exists: a forward convolution, or a
transposed one with stride 1 (the correlation of its maps with the flipped,
channel-swapped kernel). A transposed convolution with stride > 1 has no
correlation form (its inputs are spread apart), which Lava's ``Conv`` (kernel
dilation only) cannot express: it runs as a ``Dense`` of its expansion,
exactly (the simulator's ordinary fixed-projection path).

Layouts. A population's units are ``(C, H, W)`` in C order; Lava's ``Conv``
takes ``(X, Y, Z) = (W, H, C)`` arrays and a kernel ``(O, kw, kh, C)``, and
computes a *convolution* (``scipy.signal.convolve2d``: the kernel flipped),
where the IR's is a cross-correlation: the kernel is passed flipped, transposed
to Lava's axes (:func:`lava_kernel`). The flat out-port of the source is
reshaped and transposed into the ``Conv``'s in-port, and its out-port back, with
Lava's virtual ports (``reshape``, ``transpose``).

One-step delay: ``Conv`` sends at step ``t`` what it computed at ``t - 1``
(``a_buf``); ``a_buf`` starts at the kernel applied to the source's initial
state, as the Lava backend's ``Dense`` does, so the first step sees what the
reference sees.

``fixed_pt``: the kernel is quantised as a dense projection is
(``hardware_targets.quantize``, 8-bit mixed mantissas, one exponent), but Lava
0.10's ``PyConvModelFixed`` never applies ``weight_exp``: it computes the
integer sum ``Σ m·s`` and wraps it to 24 bits (``signed_clamp``). The receiving
population applies the exponent on an in-port of the projection's own (the
arithmetic shift Lava's ``Dense`` makes in its synapse), so the port gets
``wrap24(Σ m·s) >> -exp``. That is the specification the quantised reference
executes; it raises when a sum leaves the 24 bits (a wrap would be silent here).
"""
from __future__ import annotations

import numpy as np

from neuro_pc.ir.conv import Conv, ConvOp, correlation_form

__all__ = ["lava_kernel", "lava_shape", "to_lava", "wrap24", "lava_conv_projections"]


def lava_kernel(geom: Conv, kernel) -> np.ndarray:
    """Lava's ``Conv`` weight ``(O, kw, kh, C)`` for a correlation ``kernel``
    ``(O, C*kh*kw)``: transposed to Lava's axes and flipped in space (Lava
    convolves)."""
    O, C = geom.out_channels, geom.in_shape[0]
    kh, kw = geom.kernel
    k4 = np.asarray(kernel).reshape(O, C, kh, kw).transpose(0, 3, 2, 1)
    return np.ascontiguousarray(k4[:, ::-1, ::-1, :])


def lava_shape(shape) -> tuple[int, int, int]:
    """``(C, H, W)`` -> Lava's ``(W, H, C)``."""
    C, H, W = shape
    return (W, H, C)


def to_lava(flat, shape) -> np.ndarray:
    """A population's flat ``(C*H*W,)`` values as Lava's ``(W, H, C)`` array."""
    return np.asarray(flat).reshape(shape).transpose(2, 1, 0)


def wrap24(a) -> np.ndarray:
    """Lava's ``signed_clamp(a, 24)``: two's-complement wrap to 24 bits."""
    base = 1 << 24
    return (np.asarray(a, dtype=np.int64) + base // 2) % base - base // 2


def lava_conv_projections(circuit) -> dict:
    """``{projection: correlation geometry}`` of the projections that run as Lava's
    ``Conv`` (see the module docstring)."""
    out = {}
    for proj in circuit.projections:
        conv = circuit.conv_of(proj)
        if conv is None:
            continue
        if not conv.transpose or conv.stride == (1, 1):
            out[proj.name] = conv
    return out


def effective_kernel(circuit, weights: dict, proj) -> np.ndarray:
    """The kernel a conv projection applies: its own times ``scale``, or for a tied
    one ``scale * tied.scale * fn(K_to)`` (layout ``(O, C*kh*kw)`` of the geometry
    ``circuit.conv_of(proj)``)."""
    if proj.tied is None:
        return np.asarray(weights[proj.name], dtype=np.float64) * proj.scale
    K = np.asarray(weights[proj.tied.to], dtype=np.float64)
    if proj.tied.fn == "sign":
        K = np.sign(K)
    return K * proj.tied.scale * proj.scale


def initial_output(geom: Conv, kernel, s0) -> np.ndarray:
    """The correlation applied to the source's initial state, Lava layout ``(W', H', O)``
    (what ``a_buf`` starts with). Integer inputs give exact integer sums."""
    out = ConvOp(geom).conv(np.asarray(s0)[None, :], np.asarray(kernel))[0]
    return to_lava(out, geom.out_shape)


def correlation(circuit, weights: dict, proj):
    """``(geometry, kernel)`` of the correlation a projection runs as on Lava."""
    conv = circuit.conv_of(proj)
    return correlation_form(conv, effective_kernel(circuit, weights, proj))
