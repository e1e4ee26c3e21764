"""Resource mapping: hand-computed partitions, boundaries, errors."""
from __future__ import annotations

import pytest

from hardware_targets import get_target
from hardware_targets.mapping import (PopulationTooLargeError, fan_in, map_circuit)
from neuro_pc.ir import Circuit, Init, Population, Projection, Schedule, Tied
from neuro_pc.models import mlp


def _chain(n_src: int, n_tgt: int, *, connectivity: float = 1.0, bias: bool = False) -> Circuit:
    """x[n_src] -> h[n_tgt] through W (and a one-unit bias if asked)."""
    pops = [Population("x", n_src, ("r",), streams={"r": "x"}, model="input"),
            Population("h", n_tgt, ("r",), ports=("ff",), update=("r = ff",))]
    projs = [Projection("W", "x", "h", "ff", init=Init("uniform"), connectivity=connectivity)]
    if bias:
        pops.append(Population("bias", 1, ("r",), init={"r": 1.0}, model="input"))
        projs.append(Projection("b", "bias", "h", "ff", init=Init("zeros")))
    return Circuit("chain", tuple(pops), tuple(projs), Schedule(window=3),
                   streams={"x": n_src})


def test_small_circuit_default_loihi2():
    m = map_circuit(_chain(4, 3, bias=True))
    # h's fan-in: 4 synapses from x + 1 from bias = 5 per neuron
    assert fan_in(_chain(4, 3, bias=True), "h") == 5
    h = m.cores_of("h")
    assert len(h) == 1 and (h[0].start, h[0].stop) == (0, 3)
    # 3 neurons x 5 synapses = 15 synapses, x 8 bits over 128 KB = 1,048,576 bits
    assert h[0].synapses == 15
    assert h[0].memory_utilisation == pytest.approx(15 * 8 / 1_048_576)
    assert h[0].neuron_utilisation == pytest.approx(3 / 8192)
    # populations never share a core: x, h, bias -> 3 cores, all on chip 0
    assert m.n_cores == 3 and m.n_chips == 1
    assert [c.population for c in m.cores] == ["x", "h", "bias"]
    assert m.n_neurons == 4 + 3 + 1 and m.n_synapses == 15


@pytest.mark.parametrize("size, cores, last", [(8192, 1, 8192), (8193, 2, 1)])
def test_exactly_a_core_and_one_more_default_spec(size, cores, last):
    # fan-in 1 (x has one unit): memory never binds, so a core holds 8192 neurons
    m = map_circuit(_chain(1, size))
    h = m.cores_of("h")
    assert len(h) == cores
    assert h[-1].n_neurons == last
    assert h[0].neuron_utilisation == 1.0
    if cores == 2:   # the extra neuron sits alone on the next core: 1/8192
        assert (h[1].start, h[1].stop) == (8192, 8193)
        assert h[1].neuron_utilisation == pytest.approx(1 / 8192)


def test_neurons_per_core_override_boundaries():
    # 4 neurons per core: a population of 4 fills one core, 5 needs two (4 + 1)
    assert [c.n_neurons for c in map_circuit(_chain(2, 4), neurons_per_core=4).cores_of("h")] == [4]
    assert [c.n_neurons for c in map_circuit(_chain(2, 5), neurons_per_core=4).cores_of("h")] == [4, 1]


def test_memory_limits_the_chunk():
    # 10 bytes = 80 bits of synapses per core at 8 bits = 10 synapses per core;
    # fan-in 4 -> floor(80 / 32) = 2 neurons per core; 5 neurons -> 2 + 2 + 1 on 3 cores
    m = map_circuit(_chain(4, 5), memory_bytes_per_core=10)
    h = m.cores_of("h")
    assert [c.n_neurons for c in h] == [2, 2, 1]
    assert [c.synapses for c in h] == [8, 8, 4]
    assert h[0].memory_utilisation == pytest.approx(64 / 80)
    assert m.populations[1].chunk == 2


def test_fan_in_exactly_a_core_fits_one_more_does_not():
    # 10 synapses per core: fan-in 10 fits one neuron per core (100 % memory) ...
    m = map_circuit(_chain(10, 3), memory_bytes_per_core=10)
    assert [c.n_neurons for c in m.cores_of("h")] == [1, 1, 1]
    assert m.cores_of("h")[0].memory_utilisation == 1.0
    # ... fan-in 11 does not fit at all: the error names the population
    with pytest.raises(PopulationTooLargeError, match="population 'h'") as exc:
        map_circuit(_chain(11, 3), memory_bytes_per_core=10)
    assert exc.value.population == "h"
    assert "11 synapses x 8 bits = 88 bits" in str(exc.value)
    assert "80 bits" in str(exc.value)


def test_default_spec_fan_in_limit():
    # 128 KB at 8 bits holds 131072 synapses: one neuron with fan-in 131072 fits
    # (a core of its own), 131073 does not
    assert map_circuit(_chain(131072, 1)).cores_of("h")[0].memory_utilisation == 1.0
    with pytest.raises(PopulationTooLargeError, match="'h'"):
        map_circuit(_chain(131073, 1))


def test_chips_and_core_numbering():
    # 4 neurons per core, h of 9 -> 3 cores; with x and 2 cores per chip:
    # cores 0 (x), 1..3 (h) -> 4 cores -> 2 chips; core 3 on chip 1
    m = map_circuit(_chain(2, 9), neurons_per_core=4, cores_per_chip=2)
    assert m.n_cores == 4 and m.n_chips == 2
    assert [c.chip for c in m.cores] == [0, 0, 1, 1]


def test_sparse_and_tied_fan_in():
    # connectivity 0.5 of 5 sources: ceil(2.5) = 3 synapses per neuron
    assert fan_in(_chain(5, 2, connectivity=0.5), "h") == 3
    # BP's tied feedback B1 still needs synapses at h1: 8 (W1) + 1 (b1) + 4 (B1 from out)
    assert fan_in(mlp([8, 6, 4], rule="bp"), "h1") == 13


def test_fa_digits_shape():
    c = mlp([64, 128, 10], rule="fa")
    m = map_circuit(c)
    # h1: 64 (W1) + 1 (b1) + 10 (B1 from out); out: 128 (W2) + 1 (b2)
    assert {p.population: p.fan_in for p in m.populations} == {"x": 0, "bias": 0, "h1": 75,
                                                               "out": 129}
    assert m.n_synapses == 128 * 75 + 10 * 129
    assert m.n_cores == 4 and m.n_chips == 1


def test_cpu_has_no_limits():
    m = map_circuit(_chain(131073, 1), "cpu")
    assert m.n_cores is None and m.n_chips is None and m.cores == ()
    assert m.as_dict()["fits"] is True


def test_overrides_from_the_target():
    t = get_target("loihi2", synapse_memory_bits=16)
    # 16 bits per synapse: 65536 synapses per core, so fan-in 65537 cannot be mapped
    with pytest.raises(PopulationTooLargeError):
        map_circuit(_chain(65537, 1), t)


def test_bad_override():
    with pytest.raises(ValueError, match="neurons_per_core"):
        map_circuit(_chain(2, 2), neurons_per_core=0)
