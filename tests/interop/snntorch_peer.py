"""The second, independent NIR consumer of tests/interop/test_nir_snntorch.py: snnTorch.

Runs in the peers environment (.ci/setup-nir-peers: Python 3.11, torch CPU, snnTorch,
nir, nirtorch), never in neuro_pc's own: it imports nothing of neuro_pc.

    python snntorch_peer.py run GRAPH.nir SPIKES.npy OUT.npz
        load GRAPH.nir with snntorch.import_nir.import_from_nir, feed it the spike
        trains SPIKES.npy (n, steps, n_in), write the spike count of every spiking
        node (n, units) into OUT.npz, keyed by the node's name
    python snntorch_peer.py make OUT.nir SPIKES.npy COUNTS.npz --seed S [--sizes 64,24,10]
        build a snnTorch network Linear-Leaky-Linear-Synaptic (reset to zero, reset at
        the spike: reset_delay=False) with seeded random weights, run it on SPIKES.npy,
        write its spike counts ("hidden", "output") and export it with
        snntorch.export_nir.export_to_nir to OUT.nir

snnTorch computes in float32: import_from_nir loads the graph through
nirtorch.nir_to_torch, whose dtype defaults to float32, and its neurons emit float32
spikes (surrogate functions end in .float()), so neither can be run in float64
without changing snnTorch. neuro_pc computes in float64 (docs/interop.md says what
that difference can do to a spike count).
"""
import argparse
import sys

import numpy as np


def _torch():
    import torch

    torch.set_num_threads(1)
    return torch


def _spiking(snn):
    return (snn.Leaky, snn.Synaptic)


def _run(net, spikes, torch, snn, names=None):
    """Feed ``spikes`` (n, steps, n_in) step by step; counts of every spiking module."""
    counts, hooks = {}, []
    for name, mod in net.named_modules():
        if isinstance(mod, _spiking(snn)):
            key = (names or {}).get(name, name)

            def hook(_m, _inp, out, key=key):
                spk = out[0] if isinstance(out, tuple) else out
                counts[key] = counts.get(key, 0) + spk.detach().cpu().numpy()
            hooks.append(mod.register_forward_hook(hook))
    x = torch.as_tensor(spikes, dtype=torch.float32)
    with torch.no_grad():
        for t in range(x.shape[1]):
            net(x[:, t])
    for h in hooks:
        h.remove()
    return {k: np.asarray(v, dtype=np.float64) for k, v in counts.items()}


def cmd_run(args) -> None:
    torch = _torch()
    import nir
    import snntorch as snn
    from snntorch.import_nir import import_from_nir

    graph = nir.read(args.graph)
    net = import_from_nir(graph)
    spikes = np.load(args.spikes)
    counts = _run(net, spikes, torch, snn)
    np.savez(args.out, **counts)
    print(f"snntorch {snn.__version__}: {', '.join(f'{k} {v.shape}' for k, v in counts.items())}")


def cmd_make(args) -> None:
    torch = _torch()
    import nir
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    n_in, n_h, n_out = (int(s) for s in args.sizes.split(","))
    rng = np.random.default_rng(args.seed)
    lin1, lin2 = torch.nn.Linear(n_in, n_h), torch.nn.Linear(n_h, n_out)
    with torch.no_grad():
        lin1.weight.copy_(torch.as_tensor(rng.normal(0, 0.6, (n_h, n_in)), dtype=torch.float32))
        lin1.bias.copy_(torch.as_tensor(rng.normal(0.1, 0.1, n_h), dtype=torch.float32))
        lin2.weight.copy_(torch.as_tensor(rng.normal(0.1, 0.8, (n_out, n_h)), dtype=torch.float32))
        lin2.bias.copy_(torch.as_tensor(rng.normal(0.0, 0.1, n_out), dtype=torch.float32))
    full = lambda n, v: torch.full((n,), float(v))   # noqa: E731
    lif = snn.Leaky(beta=full(n_h, 0.85), threshold=full(n_h, 1.0), init_hidden=True,
                    reset_mechanism="zero", reset_delay=False)
    cuba = snn.Synaptic(alpha=full(n_out, 0.6), beta=full(n_out, 0.9),
                        threshold=full(n_out, 1.5), init_hidden=True,
                        reset_mechanism="zero", reset_delay=False)
    net = torch.nn.Sequential(lin1, lif, lin2, cuba)
    spikes = np.load(args.spikes)
    counts = _run(net, spikes, torch, snn, names={"1": "hidden", "3": "output"})
    for m in (lif, cuba):   # fresh state before tracing the export
        m.reset_hidden()
    graph = export_to_nir(net, torch.zeros(1, n_in), model_name="snntorch", ignore_dims=[0])
    nir.write(args.out, graph)
    np.savez(args.counts, **counts)
    print(f"snntorch {snn.__version__}: wrote {args.out}; "
          f"{', '.join(f'{k} {v.shape}' for k, v in counts.items())}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("graph")
    r.add_argument("spikes")
    r.add_argument("out")
    r.set_defaults(func=cmd_run)
    m = sub.add_parser("make")
    m.add_argument("out")
    m.add_argument("spikes")
    m.add_argument("counts")
    m.add_argument("--seed", type=int, required=True)
    m.add_argument("--sizes", default="64,24,10")
    m.set_defaults(func=cmd_make)
    args = p.parse_args(argv)
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
