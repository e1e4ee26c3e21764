"""What each backend target does not run, and why: the one table.

Every other feature of the semantics (docs/semantics.md) is held equal to the
reference on every target by the conformance suite (``tests/conformance``); a
feature listed here must be *refused* there with a clear error, never run
differently. A target is ``"<backend>-<target or tag>"``; ``"<backend>-*"`` holds
for all of a backend's targets.
"""
from __future__ import annotations

#: target -> {feature: reason}
UNSUPPORTED: dict[str, dict[str, str]] = {
    "brian2-*": {
        "batched training": "Brian2 runs one sample per window (online); batched training "
                            "is the reference's fast-sweep regime",
        "learning a shared kernel": "a Brian2 synapse updates its own weight from its own "
                                    "pre/post, while a conv kernel's update sums the terms "
                                    "of every position that shares it (weight sharing, "
                                    "docs/semantics.md): train on the reference, run the "
                                    "kernel fixed",
    },
    "brian2-cpp_standalone": {
        "rule transforms": "muon, unit_columns and unit_rows act on the whole weight matrix "
                           "in a NumPy network_operation, which a standalone C++ build cannot "
                           "run (use target numpy or cython)",
    },
    "lava-*": {
        "batched training": "Lava runs one sample per window (online), as the chip does; "
                            "batched training is the reference's fast-sweep regime",
        "learning a shared kernel": "Lava's Conv process and Loihi's learning engine update "
                                    "each synapse from its own traces; a conv kernel's "
                                    "update sums over every position that shares it "
                                    "(weight sharing): train on the reference, deploy the "
                                    "kernel fixed",
    },
    "lava-fixed_pt": {
        "population functions": "popmean/popsum/layernorm/kwta/softmax read the other neurons "
                                "of the population: Loihi's integer neuron sees only its own "
                                "inputs (outside the quantised mode)",
        "division by a variable": "the integer datapath divides by constants (shifts) only",
        "transcendental functions": "exp, log, sqrt and non-integer powers have no integer "
                                    "datapath (a lookup table or a microcode neuron would "
                                    "need writing)",
        "learning by rule": "fixed_pt learns only on the learning engine "
                            "(learning='engine', docs/targets/onchip.md)",
    },
}


def unsupported(target: str, features) -> dict[str, str]:
    """``{feature: reason}`` for the ``features`` that ``target`` (e.g.
    ``"lava-fixed_pt"``, ``"brian2-cython"``) declares it does not run."""
    backend = target.split("-", 1)[0]
    table = {**UNSUPPORTED.get(f"{backend}-*", {}), **UNSUPPORTED.get(target, {})}
    return {f: table[f] for f in features if f in table}
