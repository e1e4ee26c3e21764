"""Resource mapping: a simple, documented partition of a circuit onto cores.

The rule (docs/targets/loihi2.md, "Resource mapping"):

1. **Synapses live at their target.** A neuron's *fan-in* is the number of
   synapses of every projection into its population (tied ones included: on
   a chip they need weights of their own): ``n_source`` for a dense
   projection, ``ceil(connectivity * n_source)`` for a sparse one (the
   expected count; the index overhead of sparse formats is not public and
   not counted), and for a convolution the synapses of its expansion into
   the fullest neuron (``C*kh*kw`` for a forward one). A convolution's
   neurons all hold copies of one kernel; Loihi 2 can store a shared kernel
   once (its convolutional synapse encoding), but that layout is not public,
   so the count here is the per-neuron upper bound. Each synapse takes ``synapse_bits`` of the core's synaptic
   memory (``Loihi2Spec.synapse_memory_bits``, a parameter, default 8).
2. **A core holds at most** ``neurons_per_core`` neurons
   (``max_neurons_per_core``, 8192) **and** ``memory_bits`` of synapses
   (``synaptic_memory_bytes_per_core * 8`` = 1,048,576). So a core holds
   ``chunk = min(neurons_per_core, memory_bits // (fan_in * synapse_bits))``
   neurons of a population.
3. **Populations do not share cores.** Each population is cut, in unit
   order, into ``ceil(size / chunk)`` pieces of ``chunk`` neurons (the last
   one holds the rest), each on its own core. Cores are numbered in
   population order; core ``k`` is on chip ``k // cores_per_chip``.
4. **A population cannot be mapped** exactly when ``chunk == 0``: the
   fan-in of **one** neuron, ``fan_in * synapse_bits``, exceeds one core's
   synaptic memory. No split of the population helps then (a neuron's
   synapses are not split across cores in this model):
   :class:`PopulationTooLargeError` names the population and the numbers.

Utilisation of a core: ``neurons / neurons_per_core`` and
``synapses * synapse_bits / memory_bits``. A population of exactly
``neurons_per_core`` neurons with a small fan-in takes one core at 100 %
neuron utilisation; one more neuron takes a second core holding one neuron.

Not modelled: neuron-state memory (its formula per neuron model is not
public), packing several small populations onto one core, routing and
axon tables, and the host/embedded-processor side of input streams (input
populations are mapped like any other).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hardware_targets.base import get_target

__all__ = ["MappingError", "PopulationTooLargeError", "CoreAssignment", "PopulationPlacement",
           "ResourceMap", "map_circuit", "fan_in"]


class MappingError(ValueError):
    """A circuit that cannot be mapped onto the target's cores."""


class PopulationTooLargeError(MappingError):
    """One neuron of a population needs more synaptic memory than a core has."""

    def __init__(self, population: str, message: str) -> None:
        super().__init__(message)
        self.population = population


@dataclass(frozen=True)
class CoreAssignment:
    """One core: neurons ``[start, stop)`` of ``population`` and their fan-in synapses."""

    core: int
    chip: int
    population: str
    start: int
    stop: int
    synapses: int
    synapse_bits: int
    neuron_utilisation: float
    memory_utilisation: float

    @property
    def n_neurons(self) -> int:
        return self.stop - self.start

    def as_dict(self) -> dict:
        return {"core": self.core, "chip": self.chip, "population": self.population,
                "neurons": [self.start, self.stop], "n_neurons": self.n_neurons,
                "synapses": self.synapses, "synapse_bits": self.synapse_bits,
                "neuron_utilisation": self.neuron_utilisation,
                "memory_utilisation": self.memory_utilisation}


@dataclass(frozen=True)
class PopulationPlacement:
    """How one population was cut: ``chunk`` neurons per core on ``n_cores`` cores."""

    population: str
    size: int
    fan_in: int
    chunk: int | None
    first_core: int | None
    n_cores: int | None

    def as_dict(self) -> dict:
        return {"population": self.population, "size": self.size, "fan_in": self.fan_in,
                "neurons_per_core": self.chunk, "first_core": self.first_core,
                "n_cores": self.n_cores, "synapses": self.size * self.fan_in}


@dataclass(frozen=True)
class ResourceMap:
    """The partition of a circuit onto cores and chips (``None``: no limit).

    Attributes
    ----------
    target : str
        The target's name.
    neurons_per_core : int or None
        The most neurons a core holds.
    memory_bits_per_core : int or None
        A core's synaptic memory, in bits.
    synapse_bits : int or None
        Bits per synapse.
    cores_per_chip : int or None
        Cores on one chip.
    populations : tuple of PopulationPlacement
        How each population was cut, in circuit order.
    cores : tuple of CoreAssignment
        Every core, in order (empty without limits).
    n_neurons, n_synapses : int
        Totals over the populations.
    n_cores, n_chips : int or None
        How many cores and chips the map uses (``None`` without limits).
    """

    target: str
    neurons_per_core: int | None
    memory_bits_per_core: int | None
    synapse_bits: int | None
    cores_per_chip: int | None
    populations: tuple[PopulationPlacement, ...]
    cores: tuple[CoreAssignment, ...]

    @property
    def n_neurons(self) -> int:
        return sum(p.size for p in self.populations)

    @property
    def n_synapses(self) -> int:
        return sum(p.size * p.fan_in for p in self.populations)

    @property
    def n_cores(self) -> int | None:
        return None if self.neurons_per_core is None else len(self.cores)

    @property
    def n_chips(self) -> int | None:
        if self.cores_per_chip is None:
            return None
        return math.ceil(len(self.cores) / self.cores_per_chip)

    def cores_of(self, population: str) -> tuple[CoreAssignment, ...]:
        """The cores holding ``population``.

        Parameters
        ----------
        population : str
            The population's name.

        Returns
        -------
        tuple of CoreAssignment
            Its cores, in order (empty without limits).
        """
        return tuple(c for c in self.cores if c.population == population)

    def as_dict(self) -> dict:
        """JSON-able form of the map.

        Returns
        -------
        dict
            The target, its limits, the totals, and every population and core as
            a dict.
        """
        return {"target": self.target, "fits": True, "n_neurons": self.n_neurons,
                "n_synapses": self.n_synapses, "n_cores": self.n_cores, "n_chips": self.n_chips,
                "neurons_per_core": self.neurons_per_core,
                "memory_bits_per_core": self.memory_bits_per_core,
                "synapse_bits": self.synapse_bits, "cores_per_chip": self.cores_per_chip,
                "populations": [p.as_dict() for p in self.populations],
                "cores": [c.as_dict() for c in self.cores]}

    def format(self) -> str:
        """Plain-text table, one row per population, and a summary line.

        Returns
        -------
        str
            The table and the summary.
        """
        rows = [("population", "neurons", "fan-in", "synapses", "per core", "cores",
                 "neuron util", "memory util")]
        for p in self.populations:
            cs = self.cores_of(p.population)
            if cs:
                nu = max(c.neuron_utilisation for c in cs)
                mu = max(c.memory_utilisation for c in cs)
                util = (f"{100 * nu:.1f}%", f"{100 * mu:.1f}%")
            else:
                util = ("-", "-")
            rows.append((p.population, str(p.size), str(p.fan_in), str(p.size * p.fan_in),
                         "-" if p.chunk is None else str(p.chunk),
                         "-" if p.n_cores is None else str(p.n_cores), *util))
        text = format_table(rows)
        if self.neurons_per_core is None:
            summary = (f"target {self.target}: no resource limits; {self.n_neurons} neurons, "
                       f"{self.n_synapses} synapses")
        else:
            summary = (f"{self.n_cores} core(s) on {self.n_chips} chip(s) "
                       f"({self.cores_per_chip} cores/chip; a core holds <= "
                       f"{self.neurons_per_core} neurons and {self.memory_bits_per_core} bits of "
                       f"synapses at {self.synapse_bits} bits each); {self.n_neurons} neurons, "
                       f"{self.n_synapses} synapses; utilisation columns give the fullest core "
                       "of each population")
        return text + "\n" + summary


def fan_in(circuit, population: str) -> int:
    """Synapses per neuron of ``population``: every projection into it, dense
    ``n_source``, sparse ``ceil(connectivity * n_source)``."""
    return sum(n for _, n in _incoming(circuit, population))


def _incoming(circuit, population: str):
    """``(projection name, synapses per neuron)`` of every projection into ``population``."""
    sizes = {p.name: p.size for p in circuit.populations}
    for proj in circuit.projections:
        if proj.target == population:
            conv = circuit.conv_of(proj)
            if conv is not None:     # the most synapses one neuron of the expansion has
                yield proj.name, conv_fan_in(conv)
                continue
            n = sizes[proj.source]
            yield proj.name, (n if proj.connectivity >= 1.0 else math.ceil(proj.connectivity * n))


def conv_fan_in(conv) -> int:
    """Synapses into the fullest target neuron of a convolution's expansion
    (``C*kh*kw`` for a forward one; a transposed one's is border- and stride-aware)."""
    from neuro_pc.ir.conv import synapse_list

    tgt, _, _ = synapse_list(conv)
    return int(np.bincount(tgt, minlength=conv.target_size).max()) if len(tgt) else 0


def fan_in_bits(circuit, population: str, bits: int, bits_of: dict | None = None) -> int:
    """Synaptic memory per neuron of ``population``: each projection's synapses times
    its bits (``bits_of[projection]``, e.g. a learning block's, else ``bits``)."""
    bits_of = bits_of or {}
    return sum(n * bits_of.get(name, bits) for name, n in _incoming(circuit, population))


def map_circuit(circuit, target="loihi2", *, neurons_per_core: int | None = None,
                synapse_bits: int | None = None, memory_bytes_per_core: int | None = None,
                cores_per_chip: int | None = None,
                synapse_bits_of: dict | None = None) -> ResourceMap:
    """Partition ``circuit`` onto the target's cores (rule: module docstring).

    A target without limits (``cpu``) gives a map with no cores.

    Parameters
    ----------
    circuit : neuro_pc.ir.Circuit
        The circuit.
    target : str or HardwareTarget, default "loihi2"
        A target name or :class:`~hardware_targets.base.HardwareTarget`.
    neurons_per_core : int, optional
        Overrides the target's ``max_neurons_per_core`` (a positive int).
    synapse_bits : int, optional
        Overrides the target's ``synapse_memory_bits`` (a positive int).
    memory_bytes_per_core : int, optional
        Overrides the target's ``synaptic_memory_bytes_per_core`` (a positive
        int).
    cores_per_chip : int, optional
        Overrides the target's ``neuro_cores_per_chip`` (a positive int).
    synapse_bits_of : dict, optional
        ``{projection: bits}`` gives some projections' synapses another size (a
        learning block's: the weight as the engine updates it).

    Returns
    -------
    ResourceMap
        The partition.

    Raises
    ------
    PopulationTooLargeError
        When one neuron's fan-in exceeds a core's synaptic memory; the message
        names the population, its fan-in and the memory.
    ValueError
        For a limit that is not a positive int.
    """
    tgt = get_target(target) if isinstance(target, str) else target
    spec = tgt.spec
    npc = neurons_per_core if neurons_per_core is not None else \
        getattr(spec, "max_neurons_per_core", None)
    if npc is None:
        pops = tuple(PopulationPlacement(p.name, p.size, fan_in(circuit, p.name), None, None, None)
                     for p in circuit.populations)
        return ResourceMap(tgt.name, None, None, None, None, pops, ())
    bits = synapse_bits if synapse_bits is not None else spec.synapse_memory_bits
    mem_bytes = memory_bytes_per_core if memory_bytes_per_core is not None else \
        spec.synaptic_memory_bytes_per_core
    cpc = cores_per_chip if cores_per_chip is not None else spec.neuro_cores_per_chip
    for name, v in (("neurons_per_core", npc), ("synapse_bits", bits),
                    ("memory_bytes_per_core", mem_bytes), ("cores_per_chip", cpc)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    mem_bits = mem_bytes * 8

    placements, cores = [], []
    for pop in circuit.populations:
        fi = fan_in(circuit, pop.name)
        per_neuron_bits = fan_in_bits(circuit, pop.name, bits, synapse_bits_of)
        by_memory = mem_bits // per_neuron_bits if per_neuron_bits else npc
        chunk = min(npc, by_memory)
        if chunk == 0:
            raise PopulationTooLargeError(
                pop.name,
                f"population {pop.name!r} cannot be mapped on {tgt.name}: one neuron's fan-in "
                f"of {fi} synapses x {bits} bits = {per_neuron_bits} bits exceeds a core's "
                f"synaptic memory of {mem_bits} bits ({mem_bytes} bytes); at most "
                f"{mem_bits // bits} synapses fit per neuron. Reduce the fan-in (sparser or "
                "smaller source populations) or the bits per synapse.")
        first = len(cores)
        for start in range(0, pop.size, chunk):
            stop = min(pop.size, start + chunk)
            k = len(cores)
            syn = (stop - start) * fi
            cores.append(CoreAssignment(core=k, chip=k // cpc, population=pop.name,
                                        start=start, stop=stop, synapses=syn, synapse_bits=bits,
                                        neuron_utilisation=(stop - start) / npc,
                                        memory_utilisation=(stop - start) * per_neuron_bits
                                        / mem_bits))
        placements.append(PopulationPlacement(pop.name, pop.size, fi, chunk, first,
                                              len(cores) - first))
    return ResourceMap(tgt.name, npc, mem_bits, bits, cpc, tuple(placements), tuple(cores))


def format_table(rows: list[tuple[str, ...]]) -> str:
    """Left-aligned columns with a dashed rule under the header."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for k, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
