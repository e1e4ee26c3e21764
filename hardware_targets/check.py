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
  :func:`format_check`.

Everything is JSON-able. Without trained ``weights`` the initial weights
``circuit.init_weights(seed)`` set the weight exponents the learning-rate
constants depend on.
"""
from __future__ import annotations

from hardware_targets.base import get_target
from hardware_targets.circuit_quant import quantize_circuit
from hardware_targets.expressibility import expressibility_report, format_expressibility
from hardware_targets.mapping import MappingError, format_table, map_circuit
from neuro_pc.rules import format_report, locality_report

__all__ = ["check_report", "format_check"]


def check_report(circuit, target: str = "loihi2", *, weights: dict | None = None,
                 seed: int = 0, activity: dict | None = None) -> dict:
    """The three checks of ``circuit`` on ``target`` as a JSON-able dict
    (keys ``circuit``, ``target``, ``locality``, ``expressibility``,
    ``resources``, ``quantization``; see the module docstring)."""
    tgt = get_target(target)
    w = weights if weights is not None else circuit.init_weights(seed)
    quant = quantize_circuit(circuit, w, tgt, include_tied=False)
    expr = expressibility_report(circuit, tgt, weights=w, seed=seed, activity=activity)
    try:
        resources = map_circuit(circuit, tgt).as_dict()
    except MappingError as exc:
        resources = {"target": tgt.name, "fits": False, "error": str(exc),
                     "population": getattr(exc, "population", None)}
    return {
        "circuit": circuit.name,
        "target": tgt.name,
        "weights": "given" if weights is not None else f"initial (seed {seed})",
        "locality": [r.as_dict() for r in locality_report(circuit)],
        "expressibility": [e.as_dict() for e in expr],
        "resources": resources,
        "quantization": quant.report(),
    }


def format_check(report: dict) -> str:
    """Three plain-text tables: locality, expressibility, resources."""
    out = ["-- locality", _format_locality(report["locality"]), "",
           f"-- expressibility on {report.get('target', '?')}",
           format_expressibility(report["expressibility"]), "",
           f"-- resources on {report.get('target', '?')}", _format_resources(report["resources"])]
    entries = report["expressibility"]
    n_on = sum(e["expressible"] for e in entries)
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
