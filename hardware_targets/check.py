"""``neuro-pc check``: does a circuit fit a chip, and can the chip learn it?

:func:`check_report` gathers, for one circuit and one target,

* ``"locality"``: the locality report (:func:`neuro_pc.rules.locality_report`),
  one dict per plastic projection;
* ``"expressibility"``: one :class:`~hardware_targets.expressibility.RuleExpressibility`
  dict per plastic projection (on chip or not, the Lava rule string, why);
* ``"resources"``: the core/chip partition (:func:`hardware_targets.mapping.map_circuit`),
  or ``{"fits": False, "error": ...}`` when a population cannot be mapped;
* ``"quantization"``: each projection's weight format and error
  (:func:`hardware_targets.circuit_quant.quantize_circuit`), not printed by
  :func:`format_check`;
* ``"neurons"``: per population, its neuron model: Lava's own LIF (with its
  bit-accurate parameters) or a custom model that needs a microcode neuron on
  Loihi 2, and why (:func:`hardware_targets.neurons.neuron_report`);
* ``"convolutions"``: per convolutional projection (:func:`conv_report`): its
  geometry, its shared kernel and the synapses of its expansion, how it runs on
  the target (Lava's ``Conv`` process, or a ``Dense`` of the expansion for a
  transposed convolution with stride > 1, which Lava's ``Conv`` cannot express)
  and what the chip can learn of it (nothing: the engine cannot learn a shared
  kernel; a fixed kernel runs).

Everything is JSON-able. Without trained ``weights`` the initial weights
``circuit.init_weights(seed)`` set the weight exponents the learning-rate
constants depend on.
"""
from __future__ import annotations

import numpy as np

from hardware_targets.base import get_target
from hardware_targets.circuit_quant import quantize_circuit
from hardware_targets.expressibility import expressibility_report, format_expressibility
from hardware_targets.mapping import MappingError, format_table, map_circuit
from hardware_targets.neurons import format_neurons, neuron_report
from neuro_pc.rules import format_report, locality_report

__all__ = ["check_report", "format_check"]


def check_report(circuit, target: str = "loihi2", *, weights: dict | None = None,
                 seed: int = 0, activity: dict | None = None, inputs=None,
                 frac_bits: int = 12) -> dict:
    """The checks of ``circuit`` on ``target`` as a JSON-able dict.

    See the module docstring for what each part holds.

    Parameters
    ----------
    circuit : neuro_pc.ir.Circuit
        The circuit.
    target : str, default "loihi2"
        The target's name.
    weights : dict, optional
        Trained weights ``{projection: array}``; default the initial weights
        ``circuit.init_weights(seed)``, which set the weight exponents the
        learning-rate constants depend on.
    seed : int, default 0
        The seed of the initial weights.
    activity : dict, optional
        ``{"pop.var": values}`` recorded on representative input, which the post
        codes of the compiled rules are scaled by
        (:func:`hardware_targets.onchip.plan_onchip`).
    inputs : array_like, optional
        Data the circuit is run on: its range is checked against the fixed-point
        state format of ``frac_bits`` fractional bits.
    frac_bits : int, default 12
        Fractional bits of the fixed-point state format.

    Returns
    -------
    dict
        Keys ``circuit``, ``target``, ``weights``, ``locality``,
        ``expressibility``, ``resources``, ``resources_learning``,
        ``quantization``, ``fixed_point``, ``neurons``, ``convolutions``.
    """
    tgt = get_target(target)
    w = weights if weights is not None else circuit.init_weights(seed)
    quant = quantize_circuit(circuit, w, tgt, include_tied=False)
    fixed = None
    if tgt.state_bits is not None:
        from hardware_targets.circuit_quant import state_losses

        losses = quant.losses()
        if inputs is not None:
            losses += state_losses("the input data", inputs, tgt.state_bits, frac_bits)
        fixed = {"state": f"{tgt.state_bits}-bit state and messages, {frac_bits} fractional "
                          f"bits: values in [-{2.0 ** (tgt.state_bits - 1 - frac_bits):g}, "
                          f"{2.0 ** (tgt.state_bits - 1 - frac_bits):g}) in steps of "
                          f"2^-{frac_bits}",
                 "weights": "8-bit mixed-sign mantissas, one shared exponent per projection "
                            "(nearest rounding)",
                 "inputs": None if inputs is None else
                 [float(np.min(inputs)), float(np.max(inputs))],
                 "table": quant.format(), "losses": losses}
    expr = expressibility_report(circuit, tgt, weights=w, seed=seed, activity=activity)
    resources = _resources(circuit, tgt)
    compiled = [e.projection for e in expr if e.expressible and e.loihi_rule]
    learning = None
    if compiled and tgt.state_bits is not None:
        le = tgt.spec.learning
        learning = _resources(circuit, tgt, {n: le.weight_factor_bits for n in compiled})
        learning["note"] = learning_memory_note(circuit, compiled, le)
    return {
        "circuit": circuit.name,
        "target": tgt.name,
        "weights": "given" if weights is not None else f"initial (seed {seed})",
        "locality": [r.as_dict() for r in locality_report(circuit)],
        "expressibility": [e.as_dict() for e in expr],
        "resources": resources,
        "resources_learning": learning,
        "quantization": quant.report(),
        "fixed_point": fixed,
        "neurons": neuron_report(circuit, tgt),
        "convolutions": conv_report(circuit),
    }


def conv_report(circuit) -> list[dict]:
    """One dict per convolutional projection (own kernel or tied to one): geometry,
    kernel weights, synapses of the expansion and per target neuron, how Lava runs it,
    and whether the chip can learn it (with the reason)."""
    from hardware_targets.mapping import conv_fan_in
    from neuro_pc.ir.conv import synapse_list

    out = []
    for proj in circuit.projections:
        conv = circuit.conv_of(proj)
        if conv is None:
            continue
        runs = ("Lava Conv (a correlation with the transposed, flipped kernel)"
                if conv.transpose and conv.stride == (1, 1) else
                "Lava Dense of its expansion (Lava's Conv has no transposed convolution with "
                "stride > 1)" if conv.transpose else "Lava Conv")
        if proj.tied is not None:
            learns = (f"tied to {proj.tied.to!r} (weight transport): not on chip, a synapse "
                      "cannot read another projection's weights")
        elif proj.rule is not None:
            learns = (f"no: weight sharing (the kernel's update sums over its {conv.positions} "
                      "positions; the engine updates each synapse from its own traces): train "
                      "off chip and deploy the kernel fixed")
        else:
            learns = "fixed kernel: runs on chip"
        out.append({"projection": proj.name, "geometry": conv.describe(),
                    "kernel": list(conv.weight_shape),
                    "shared_weights": int(conv.weight_shape[0] * conv.weight_shape[1]),
                    "positions": conv.positions, "synapses": int(len(synapse_list(conv)[0])),
                    "fan_in": conv_fan_in(conv), "runs_as": runs, "learning": learns,
                    "plastic": proj.rule is not None})
    return out


def _resources(circuit, tgt, bits_of=None) -> dict:
    try:
        return map_circuit(circuit, tgt, synapse_bits_of=bits_of).as_dict()
    except MappingError as exc:
        return {"target": tgt.name, "fits": False, "error": str(exc),
                "population": getattr(exc, "population", None)}


def learning_memory_note(circuit, blocks, le) -> str:
    """What learning adds to the chip's memory, for the blocks named (Lava's widths)."""
    sizes = {p.name: p.size for p in circuit.populations}
    pre = sum(sizes[circuit.projection(n).source] for n in blocks)
    post = len({circuit.projection(n).target for n in blocks})
    post_n = sum(sizes[p] for p in {circuit.projection(n).target for n in blocks})
    x_bits = 2 * le.trace_bits + le.epoch_time_bits
    y_bits = 3 * le.trace_bits + le.epoch_time_bits
    return (f"learning blocks {', '.join(blocks)}: each synapse holds its weight as the engine "
            f"updates it, {le.weight_factor_bits} bits signed (Lava W_WEIGHTS_S; a static "
            f"synapse here counts {le.weight_factor_bits - 1}); per pre axon x1, x2 and the "
            f"spike time tx: {x_bits} bits x {pre} axons; per post neuron y1..y3 and ty: "
            f"{y_bits} bits x {post_n} neurons in {post} population(s) (Lava W_TRACE, "
            "W_EPOCH_TIME; neuron and trace state memory is not in the core count: its layout "
            "on Loihi 2 is not public)")


def format_check(report: dict) -> str:
    """Plain-text tables of a :func:`check_report`, and a summary line.

    Locality, expressibility and resources, then (when the report has them) the
    fixed-point format, the neuron models, the convolutions and the resources
    with the learning blocks.

    Parameters
    ----------
    report : dict
        A :func:`check_report` result.

    Returns
    -------
    str
        The tables.
    """
    out = ["-- locality", _format_locality(report["locality"]), "",
           f"-- expressibility on {report.get('target', '?')}",
           format_expressibility(report["expressibility"]), "",
           f"-- resources on {report.get('target', '?')}", _format_resources(report["resources"])]
    fp = report.get("fixed_point")
    if fp:
        out += ["", f"-- fixed-point format on {report.get('target', '?')} (Lava fixed_pt)",
                f"state: {fp['state']}; weights: {fp['weights']}"
                + (f"; the input data spans [{fp['inputs'][0]:.3g}, {fp['inputs'][1]:.3g}]"
                   if fp.get("inputs") else ""),
                fp["table"]]
        out += [f"  warning: {x}" for x in fp["losses"]] or \
            ["  no projection loses more than 5 % to the format, and nothing saturates"]
    if report.get("neurons"):
        out += ["", f"-- neuron models on {report.get('target', '?')}",
                format_neurons(report["neurons"])]
    if report.get("convolutions"):
        out += ["", f"-- convolutions on {report.get('target', '?')}", _format_convs(
            report["convolutions"])]
    if report.get("resources_learning"):
        res = report["resources_learning"]
        out += ["", f"-- resources on {report.get('target', '?')} with the learning blocks",
                _format_resources(res)]
        if res.get("note"):
            out.append(res["note"])
    entries = report["expressibility"]
    judged = any("executed" in e for e in entries)
    # once execution was asked for, "on chip" is only what ran through the engine
    n_on = sum(e["expressible"] and (not judged or bool(e.get("executed"))) for e in entries)
    n_if = sum(e["verdict"] == "yes, if" for e in entries)
    n_ex = sum(bool(e.get("executed")) and e["expressible"] for e in entries)
    n_not = sum(e["expressible"] and "executed_note" in e for e in entries)
    ex = report.get("executed_on")
    out += ["", f"summary: {n_on}/{len(entries)} rules on chip"
            + (f" ({n_if} with conditions)" if n_if else "")
            + (f"; {n_ex} executed through Lava's {ex['tag']} LearningDense on "
               f"{ex['samples']} windows of {ex['data']}" if n_ex and ex else "")
            + (f"; {n_not} compile but were NOT executed" if n_not else "")
            + ("; fits" if report["resources"].get("fits") else "; does NOT fit")]
    return "\n".join(out)


def _format_convs(rows: list[dict]) -> str:
    table = [("projection", "geometry", "kernel", "synapses (max/neuron)", "runs as",
              "learning on chip")]
    for r in rows:
        table.append((r["projection"], r["geometry"],
                      f"{r['kernel'][0]}x{r['kernel'][1]} = {r['shared_weights']}",
                      f"{r['synapses']} ({r['fan_in']})", r["runs_as"], r["learning"]))
    n_plastic = sum(r["plastic"] for r in rows)
    return format_table(table) + (
        f"\n{len(rows)} convolution(s), {n_plastic} with a plastic kernel that the chip cannot "
        "learn; each runs with one kernel shared by its positions (the resource table counts "
        "every neuron's synapses: an upper bound where the chip stores a shared kernel once)")


def _format_locality(rows: list[dict]) -> str:
    from neuro_pc.rules import RuleLocality

    objs = [RuleLocality(projection=r["projection"], rule=r["rule"], level=r["level"],
                         weight_transport=r["weight_transport"], reasons=tuple(r["reasons"]),
                         baseline=r["baseline"], transforms=tuple(r["transforms"]))
            for r in rows]
    return format_report(objs) if objs else "(no plastic projections)"


def _format_resources(res: dict) -> str:
    if not res.get("fits", False):
        return f"does not fit: {res.get('error')}"
    rows = [("population", "neurons", "fan-in", "synapses", "per core", "cores",
             "neuron util", "memory util")]
    for p in res["populations"]:
        cores = [c for c in res["cores"] if c["population"] == p["population"]]
        if cores:
            nu = f"{100 * max(c['neuron_utilisation'] for c in cores):.1f}%"
            mu = f"{100 * max(c['memory_utilisation'] for c in cores):.1f}%"
        else:
            nu = mu = "-"
        rows.append((p["population"], str(p["size"]), str(p["fan_in"]), str(p["synapses"]),
                     "-" if p["neurons_per_core"] is None else str(p["neurons_per_core"]),
                     "-" if p["n_cores"] is None else str(p["n_cores"]), nu, mu))
    text = format_table(rows)
    if res["n_cores"] is None:
        return text + (f"\nno resource limits on {res['target']}: {res['n_neurons']} neurons, "
                       f"{res['n_synapses']} synapses")
    return text + (f"\n{res['n_cores']} core(s) on {res['n_chips']} chip(s) "
                   f"({res['cores_per_chip']} cores/chip; a core holds <= "
                   f"{res['neurons_per_core']} neurons and {res['memory_bits_per_core']} bits of "
                   f"synapses at {res['synapse_bits']} bits each); {res['n_neurons']} neurons, "
                   f"{res['n_synapses']} synapses. Utilisation: the fullest core of each "
                   "population.")
