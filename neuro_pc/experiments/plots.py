"""Figure helpers shared by the experiment kinds (and ``neuro-pc plot``).

Every figure is drawn from ``results.json`` data alone, so a run's figures can be
redrawn later (``neuro-pc plot RUN_DIR``):

* :func:`seed_band`: the mean over seeds with a mean ± sd band;
* :func:`style`: a distinct line style and marker per curve, so curves that
  coincide (FA and DFA with one hidden layer) stay visible;
* :func:`integer_epochs`: epoch axes with integer ticks;
* :func:`raster_figure`: one presentation's spikes and output traces
  (:func:`raster_data` stores them in the results).
"""
from __future__ import annotations

import numpy as np

#: (line style, marker) pairs, cycled; dashes differ so that overlapping curves show
STYLES = (("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"), ((0, (5, 1, 1, 1)), "v"),
          ((0, (1, 1)), "P"), ((0, (8, 2)), "X"))


def style(k: int) -> dict:
    """Line keyword arguments of the ``k``-th curve of a plot."""
    ls, marker = STYLES[k % len(STYLES)]
    return {"linestyle": ls, "marker": marker, "markersize": 4 + (k % 3), "linewidth": 1.6,
            "markerfacecolor": "none" if k % 2 else None}


def integer_epochs(ax, label: str = "epoch") -> None:
    """Integer ticks (epochs are whole numbers) and the axis label."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(label)


def seed_band(ax, runs, label: str, k: int = 0, scale: float = 1.0, x=None):
    """Plot the mean over seeds of ``runs`` (a list of equal-length curves, one per
    seed) with a shaded mean ± sd band (none for one seed); returns the line."""
    arr = scale * np.asarray(runs, dtype=float)
    if arr.ndim != 2 or arr.shape[1] == 0:
        return None
    x = np.arange(1, arr.shape[1] + 1) if x is None else np.asarray(x)
    mean = np.nanmean(arr, axis=0)
    n = arr.shape[0]
    line, = ax.plot(x, mean, label=label, **style(k))
    if n > 1:
        sd = np.nanstd(arr, axis=0)
        ax.fill_between(x, mean - sd, mean + sd, color=line.get_color(), alpha=0.18,
                        linewidth=0)
    return line


def raster_data(ras: dict, info: dict) -> dict:
    """The JSON-able record of one presentation: ``info`` (rule, seed, test index,
    label, predicted) plus, per spiking population, its size and spike times
    (``t``) and units (``unit``), and the readout trace ``(T, n_out)``."""
    trains = {}
    for p, v in ras.items():
        if p == "readout":
            continue
        t, n = np.nonzero(np.asarray(v))
        trains[p] = {"size": int(np.shape(v)[1]), "t": t.tolist(), "unit": n.tolist()}
    return {**info, "trains": trains,
            "readout": np.asarray(ras["readout"], dtype=float).tolist()}


def raster_figure(plt, data: dict):
    """Spikes of every population (one panel each) and the output traces of one
    presentation, from :func:`raster_data`'s record."""
    pops = list(data["trains"])
    sizes = [data["trains"][p]["size"] for p in pops]
    fig, axes = plt.subplots(len(pops) + 1, 1, figsize=(8, 2 + 0.025 * sum(sizes) + 2),
                             sharex=True,
                             gridspec_kw={"height_ratios": [max(s, 10) for s in sizes] + [30]})
    for ax, p in zip(axes, pops):
        tr = data["trains"][p]
        ax.scatter(tr["t"], tr["unit"], s=4, marker="|", color="k")
        ax.set_ylabel(f"{p}\nunit")
        ax.set_ylim(-0.5, tr["size"] - 0.5)
    readout = np.asarray(data["readout"], dtype=float)
    T = readout.shape[0]
    for j in range(readout.shape[1]):
        axes[-1].plot(np.arange(T), readout[:, j], label=str(j),
                      lw=2.5 if j == data.get("label") else 1)
    axes[-1].set(xlabel="step in the presentation window", ylabel="out trace")
    axes[-1].legend(ncol=5, fontsize=6, loc="upper left")
    axes[0].set_title(f"spiking {data['rule']}, seed {data['seed']}, test sample "
                      f"{data['test_index']} (label {data['label']}, predicted "
                      f"{data['predicted']})")
    fig.tight_layout()
    plt.close(fig)
    return fig


__all__ = ["STYLES", "integer_epochs", "raster_data", "raster_figure", "seed_band", "style"]
