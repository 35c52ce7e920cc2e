"""Figures and display tables of the book, drawn from the experiments' results.

Every function takes what :mod:`adv2lib.experiments` returns (an
:class:`~adv2lib.experiments.ExperimentResult`, or a list of them, one per victim, or the
tidy frames inside them) and returns a matplotlib ``Figure`` or a pandas object; nothing
here computes an attack or a metric. Maps are drawn at their native resolution, upsampled
bilinearly only for display (:func:`adv2lib.interpreters.upsample_map`) and overlaid on the
image as JET heat maps, as the paper's figures do.

>>> results = [run_main(victim=v, smoke=True) for v in ("resnet", "densenet")]   # doctest: +SKIP
>>> rate_table(combine(results, "summary"))                                      # doctest: +SKIP
>>> l1_bars(combine(results, "summary"))                                         # doctest: +SKIP
"""
from __future__ import annotations

from typing import Iterable, Sequence

import matplotlib

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from .names import INTERPRETERS, LABELS, VICTIMS

__all__ = [
    "LABELS", "book_style", "class_names", "combine", "rate_table", "metric_table", "l1_bars", "iou_curves",
    "reference_bars", "confidence_curves", "ablation_bars", "transfer_heatmaps", "attack_grid", "patch_grid", "random_class_grid",
    "transfer_grid", "one_picture", "show_panel", "show", "caption", "preset_table", "training_curves", "loss_curves",
    "budget_curves", "robustness_curves", "roc_curves", "aid_bars",
]

COLORS = {"pgd": "#d62728", "adv2": "#1f77b4", "benign": "#7f7f7f", "target": "#2ca02c",
          "delta_b": "#9467bd", "delta_t": "#2ca02c"}
MAP_CMAP = "jet"


def _label(key) -> str:
    return LABELS.get(str(key), str(key))


def book_style() -> None:
    """Matplotlib settings shared by every figure of the book (PNG, readable at page width)."""
    matplotlib.rcParams.update({
        "figure.dpi": 100, "savefig.dpi": 100, "font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9,
        "legend.fontsize": 8, "xtick.labelsize": 8, "ytick.labelsize": 8, "axes.spines.top": False,
        "axes.spines.right": False, "figure.constrained_layout.use": True,
    })


def class_names(profile: str = "embedded") -> tuple[str, ...]:
    """Human-readable class names of a profile's dataset."""
    if profile == "embedded":
        from .data import FASHION_MNIST_CLASSES

        return tuple(FASHION_MNIST_CLASSES)
    try:
        from .models.imagenet import _imagenet_categories

        return tuple(_imagenet_categories())
    except Exception:  # noqa: BLE001 - names are cosmetic; fall back to indices
        return tuple(str(i) for i in range(1000))


def combine(results, attribute: str) -> pd.DataFrame:
    """Concatenate one frame (``"summary"``, ``"examples"``, ``"iou"``) over several results
    (e.g. one per victim); each frame already carries its ``victim`` column where needed."""
    results = [results] if not isinstance(results, (list, tuple)) else results
    frames = []
    for r in results:
        frame = getattr(r, attribute).copy()
        if "victim" not in frame.columns:
            frame.insert(0, "victim", r.victim)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _ordered(values: Iterable, order: Sequence) -> list:
    values = list(dict.fromkeys(values))
    return [v for v in order if v in values] + [v for v in values if v not in order]


# =========================================================================== display helpers
def caption(text: str) -> None:
    """Display ``text`` (MyST Markdown) as a caption under the previous output."""
    from IPython.display import Markdown, display

    display(Markdown(text))


def show(fig: Figure, text: str | None = None) -> None:
    """Display a figure (as PNG) with an optional caption, then release it."""
    from IPython.display import display

    display(fig)
    plt.close(fig)
    if text:
        caption(text)


def preset_table(profile: str = "embedded", smoke: bool = False,
                 attacks: Sequence[str] = ("pgd", *INTERPRETERS)) -> pd.DataFrame:
    """The attack hyperparameters actually used: one column per attack (PGD, ADV2 against each
    interpreter), one row per field of the presets (:func:`adv2lib.attacks.preset_for`);
    fields an attack does not have are left blank. Sources of every value: the presets'
    field metadata (``adv2lib/attacks/config.py``)."""
    from .attacks import describe, preset_for

    columns = {}
    for attack in attacks:
        cfg = preset_for(profile, attack, smoke=smoke)
        d = describe(cfg)
        columns["PGD" if attack == "pgd" else f"ADV2-{_label(attack)}"] = dict(zip(d["field"], d["value"]))
    fields = list(dict.fromkeys(f for col in columns.values() for f in col))
    table = pd.DataFrame({c: [_fmt_value(v.get(f)) if f in v else "" for f in fields] for c, v in columns.items()},
                         index=fields)
    table.index.name = "field"
    return table


def _fmt_value(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (tuple, list)):
        if v and all(isinstance(x, (tuple, list)) and len(x) == 2 for x in v):  # (value, steps) stages
            return ", ".join(f"{_fmt_value(a)} × {b}" for a, b in v)
        return ", ".join(_fmt_value(x) for x in v) if v else "–"
    return "–" if v is None else str(v)


def training_curves(cards: Sequence[dict]) -> Figure:
    """Test accuracy after each training epoch, from the model cards' ``history``."""
    fig, ax = plt.subplots(figsize=(4.2, 2.6))
    for card in cards:
        hist = card.get("history") or []
        epochs = [h.get("epoch") for h in hist if "test_accuracy" in h]
        acc = [h["test_accuracy"] for h in hist if "test_accuracy" in h]
        if epochs:
            ax.plot(epochs, acc, marker="o", ms=3, label=_label(card.get("name", "?")))
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy")
    ax.legend(frameon=False)
    return fig


def loss_curves(cards: Sequence[dict], x: str = "step") -> Figure:
    """Every logged loss term against ``x`` (e.g. the RTS cards' ``history``), one panel per card."""
    fig, axes = plt.subplots(1, max(len(cards), 1), figsize=(3.8 * max(len(cards), 1), 2.6), squeeze=False)
    for ax, card in zip(axes[0], cards):
        hist = pd.DataFrame(card.get("history") or [])
        if hist.empty or x not in hist:
            ax.axis("off")
            continue
        for col in hist.columns:
            if col in (x, "seconds", "epoch") or not np.issubdtype(hist[col].dtype, np.number):
                continue
            ax.plot(hist[x], hist[col], label=col, lw=1)
        ax.set_xlabel(x)
        ax.set_title(card.get("name", ""))
        ax.legend(frameon=False, fontsize=7)
    return fig


# =========================================================================== tables
def rate_table(summary: pd.DataFrame, attacks: Sequence[str] = ("pgd", "adv2")) -> "pd.io.formats.style.Styler":
    """ASR and MC per victim x attack (rows) and interpreter (columns), as in the paper's
    main prediction table. ASR counts every attacked image; MC averages p(ct) over the
    successful ones."""
    df = summary[summary["attack"].isin(attacks)]
    table = df.pivot_table(index=["victim", "attack"], columns="interpreter", values=["asr", "mc"], aggfunc="first")
    table = table.swaplevel(0, 1, axis=1)
    interps = _ordered(table.columns.get_level_values(0), INTERPRETERS)
    table = table.reindex(columns=pd.MultiIndex.from_product([interps, ["asr", "mc"]]))
    rows = [(v, a) for v in _ordered(df["victim"], VICTIMS) for a in attacks if (v, a) in table.index]
    table = table.loc[rows]
    return _styled(table, {"asr": "{:.0%}", "mc": "{:.2f}"})


def metric_table(summary: pd.DataFrame, metrics: dict, index=("victim",), attack: str | None = "adv2"):
    """A compact table: rows = ``index`` x metric label, columns = interpreter.

    ``metrics`` maps a column of ``summary`` to ``(label, format)``, e.g.
    ``{"l1_benign": ("Δb", "{:.3f}"), "l1_target": ("Δt", "{:.3f}")}``.
    """
    df = summary if attack is None else summary[summary["attack"] == attack]
    rows = []
    for key, group in df.groupby(list(index), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        for col, (label, _) in metrics.items():
            row = {**{_index_name(i): _label(k) for i, k in zip(index, key)}, "metric": label}
            for _, r in group.iterrows():
                row[_label(r["interpreter"])] = r[col]
            rows.append(row)
    table = pd.DataFrame(rows).set_index([_index_name(i) for i in index] + ["metric"])
    cols = [_label(c) for c in _ordered(df["interpreter"], INTERPRETERS)]
    table = table[cols]
    styler = table.style
    for col, (label, fmt) in metrics.items():
        idx = table.index[table.index.get_level_values("metric") == label]
        styler = styler.format(fmt, subset=pd.IndexSlice[idx, :], na_rep="–")
    return styler


def _index_name(name: str) -> str:
    return {"victim": "victim", "attack": "attack"}.get(name, name)


def _styled(table: pd.DataFrame, formats: dict):
    styler = table.style
    for metric, fmt in formats.items():
        cols = [c for c in table.columns if c[-1] == metric]
        styler = styler.format(fmt, subset=cols, na_rep="–")
    return styler.format_index(_label, axis=0, level=list(range(table.index.nlevels))).format_index(
        lambda c: _label(c).upper() if c in ("asr", "mc") else _label(c), axis=1,
        level=list(range(table.columns.nlevels)))


# =========================================================================== bar and line charts
def _victims(frame: pd.DataFrame) -> list:
    return _ordered(frame["victim"], VICTIMS)


def _bars(ax, groups, series: dict, errors: dict | None = None, colors: dict | None = None, fmt="{:.2f}"):
    """Grouped bars: ``series`` maps a legend label to one value per group."""
    n = len(series)
    width = 0.8 / max(n, 1)
    x = np.arange(len(groups))
    for i, (name, values) in enumerate(series.items()):
        err = None if errors is None else errors.get(name)
        pos = x - 0.4 + width * (i + 0.5)
        bars = ax.bar(pos, values, width, yerr=err, capsize=2, label=_label(name),
                      color=(colors or COLORS).get(name), error_kw={"lw": 0.8})
        for b, v in zip(bars, values):
            if np.isfinite(v):
                ax.annotate(fmt.format(v), (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom",
                            fontsize=7, xytext=(0, 1), textcoords="offset points")
    ax.set_xticks(x, [_label(g) for g in groups])


def _floor_marks(ax, interps, victim, floors) -> None:
    """The interpreters' noise floors (``{(victim, interpreter): L1}``, raw names) as short dotted
    lines across their groups of bars."""
    first = True
    for k, interp in enumerate(interps):
        value = (floors or {}).get((victim, interp))
        if value is not None and np.isfinite(value):
            ax.hlines(value, k - 0.45, k + 0.45, colors="black", linestyles=":", lw=1.2,
                      label="noise floor" if first else None)
            first = False


def l1_bars(summary: pd.DataFrame, value: str = "l1_benign", attacks: Sequence[str] = ("pgd", "adv2"),
            ylabel: str = "L1 distance to the benign map", floors: dict | None = None) -> Figure:
    """Mean L1 distance of the PGD and ADV2 maps to the benign map, per interpreter and victim
    (successful attacks only; error bars: one standard deviation over images). ``floors``
    (``{(victim, interpreter): L1}``) draws each interpreter's noise floor as a dotted line."""
    victims = _victims(summary)
    fig, axes = plt.subplots(1, len(victims), figsize=(3.6 * len(victims), 2.8), sharey=True, squeeze=False)
    for ax, victim in zip(axes[0], victims):
        df = summary[summary["victim"] == victim]
        interps = _ordered(df["interpreter"], INTERPRETERS)
        series, errors = {}, {}
        for attack in attacks:
            sub = df[df["attack"] == attack].set_index("interpreter").reindex(interps)
            series[attack] = sub[value].to_numpy(dtype=float)
            if f"{value}_std" in sub:
                errors[attack] = np.nan_to_num(sub[f"{value}_std"].to_numpy(dtype=float))
        _bars(ax, interps, series, errors)
        _floor_marks(ax, interps, victim, floors)
        ax.set_title(_label(victim))
        ax.set_ylabel(ylabel if ax is axes[0][0] else "")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=len(handles), frameon=False)
    return fig


def budget_curves(examples: pd.DataFrame, floors: dict | None = None) -> Figure:
    """The budget experiment (:func:`adv2lib.experiments.run_budget`): mean L1 distance to the
    benign map (top row) and MC (bottom row) of ADV2 against its stage-2 budget (x the preset),
    one panel per interpreter, one line per victim; PGD's value is the dashed line of the
    same colour, the interpreter's noise floor (``floors``, ``{(victim, interpreter): L1}``)
    the dotted one. Means over successful attacks, error bars one standard deviation."""
    from .metrics import summarize

    s = summarize(examples, by=("victim", "interpreter", "attack", "budget"))
    interps, victims = _ordered(s["interpreter"], INTERPRETERS), _victims(s)
    fig, axes = plt.subplots(2, len(interps), figsize=(2.8 * len(interps), 4.4), sharex=True, squeeze=False)
    colours = dict(zip(victims, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for j, interp in enumerate(interps):
        for victim in victims:
            sub = s[(s["interpreter"] == interp) & (s["victim"] == victim)]
            adv, pgd = sub[sub["attack"] != "pgd"].sort_values("budget"), sub[sub["attack"] == "pgd"]
            for i, (col, err) in enumerate((("l1_benign", "l1_benign_std"), ("mc", None))):
                ax = axes[i][j]
                ax.errorbar(adv["budget"], adv[col], yerr=None if err is None else adv[err].fillna(0),
                            marker="o", ms=4, capsize=2, lw=1.2, color=colours[victim],
                            label=f"ADV2, {_label(victim)}")
                if len(pgd):
                    ax.axhline(float(pgd[col].iloc[0]), ls="--", lw=1, color=colours[victim],
                               label=f"PGD, {_label(victim)}")
                if i == 0 and floors and (victim, interp) in floors:
                    ax.axhline(floors[(victim, interp)], ls=":", lw=1.2, color=colours[victim],
                               label=f"noise floor, {_label(victim)}")
        axes[0][j].set_title(_label(interp))
        axes[1][j].set_xscale("log", base=2)
        ticks = sorted(s.loc[s["attack"] != "pgd", "budget"].unique())
        axes[1][j].set_xticks(ticks, [f"{t:g}x" for t in ticks])
        axes[1][j].set_xlabel("stage-2 iterations (x preset)")
    axes[0][0].set_ylabel("L1 to the benign map")
    axes[1][0].set_ylabel("MC (mean p(ct))")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=min(4, len(handles)), frameon=False)
    return fig


def iou_curves(iou: pd.DataFrame, reference: str = "benign", attacks: Sequence[str] = ("pgd", "adv2"),
               successful_only: bool = True, hue: str = "attack") -> Figure:
    """The IoU test: mean IoU (over images) between the top-k cells of the attack's map and of
    the ``reference`` map, against k; one panel per victim x interpreter."""
    df = iou[iou["reference"] == reference]
    if successful_only and "success" in df:
        df = df[df["success"].astype(bool)]
    if "attack" in df:
        df = df[df["attack"].isin(attacks)]
    victims, interps = _victims(df), _ordered(df["interpreter"], INTERPRETERS)
    fig, axes = plt.subplots(len(victims), len(interps), figsize=(2.2 * len(interps), 2.0 * len(victims)),
                             sharex=True, sharey=True, squeeze=False)
    for i, victim in enumerate(victims):
        for j, interp in enumerate(interps):
            ax = axes[i][j]
            sub = df[(df["victim"] == victim) & (df["interpreter"] == interp)]
            for key, group in sub.groupby(hue, sort=False):
                curve = group.groupby("k")["iou"].mean()
                ax.plot(curve.index * 100, curve.to_numpy(), marker="o", ms=3, label=_label(key),
                        color=COLORS.get(key))
            ax.set_ylim(0, 1.02)
            if i == 0:
                ax.set_title(_label(interp))
            if j == 0:
                ax.set_ylabel(f"{_label(victim)}\nIoU with {reference} map")
            if i == len(victims) - 1:
                ax.set_xlabel("k (% of cells kept)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside upper center", ncols=len(handles), frameon=False)
    return fig


def reference_bars(summary: pd.DataFrame, attack: str = "adv2") -> Figure:
    """The paper's two-panel similarity chart, per victim (rows): (a) the L1 distance of the
    ADV2 map to the benign map and to the target map, (b) the mean IoU (over k and images)
    with each, per interpreter; error bars on L1: one standard deviation over images. Used by
    the patch chapter (Table 7's Δb and Δt) and the random-class chapter, whose experiment the
    paper's chart most likely shows (its L1 axis stops below Table 7's Δb values)."""
    df = summary[summary["attack"] == attack]
    victims = _victims(df)
    fig, axes = plt.subplots(len(victims), 2, figsize=(7.6, 2.6 * len(victims)), squeeze=False)
    for row, victim in enumerate(victims):
        sub = df[df["victim"] == victim]
        interps = _ordered(sub["interpreter"], INTERPRETERS)
        sub = sub.set_index("interpreter").reindex(interps)

        def values(col):
            return sub[col].to_numpy(float) if col in sub else np.full(len(interps), np.nan)

        def std(col):
            return np.nan_to_num(values(col + "_std"))

        _bars(axes[row][0], interps, {"benign": values("l1_benign"), "target": values("l1_target")},
              {"benign": std("l1_benign"), "target": std("l1_target")})
        _bars(axes[row][1], interps, {"benign": values("iou_benign_mean"), "target": values("iou_target_mean")})
        axes[row][1].set_ylim(0, 1.1)
        axes[row][0].set_ylabel(f"{_label(victim)}\nL1 distance")
        axes[row][1].set_ylabel("mean IoU")
    axes[0][0].set_title("(a) L1 distance of the ADV2 map")
    axes[0][1].set_title("(b) IoU of the ADV2 map")
    handles = [plt.Rectangle((0, 0), 1, 1, color=COLORS["benign"]), plt.Rectangle((0, 0), 1, 1, color=COLORS["target"])]
    fig.legend(handles, ["w.r.t. the benign map", "w.r.t. the target map"], frameon=False,
               loc="outside upper center", ncols=2)
    return fig


def transfer_heatmaps(matrices: dict, title: str = "L1 distance to the target interpreter's benign map") -> Figure:
    """Table 9 analogue: one annotated heat map per victim (rows = source interpreter the ADV2
    inputs were built against, plus PGD; columns = the interpreter that explains them).

    Annotations are the mean L1 distances. Because L1 values are only comparable within one
    interpreter (column), the colour is each entry divided by the PGD entry of its column:
    below 1 (blue), the map is closer to the benign map than a plain PGD input's.
    """
    fig, axes = plt.subplots(1, len(matrices), figsize=(3.9 * len(matrices), 3.3), squeeze=False)
    image = None
    for ax, (victim, matrix) in zip(axes[0], matrices.items()):
        values = matrix.to_numpy(dtype=float)
        ref = matrix.loc["pgd"].to_numpy(dtype=float) if "pgd" in matrix.index else np.nanmax(values, 0)
        ratio = values / np.where(ref > 0, ref, np.nan)
        image = ax.imshow(np.log2(ratio), cmap="coolwarm", vmin=-3, vmax=3)
        for (r, c), v in np.ndenumerate(values):
            ax.text(c, r, f"{v:.3f}", ha="center", va="center", fontsize=8,
                    fontweight="bold" if matrix.index[r] == matrix.columns[c] else "normal")
        ax.set_xticks(range(values.shape[1]), [_label(c) for c in matrix.columns])
        ax.set_yticks(range(values.shape[0]), [_label(r) for r in matrix.index])
        ax.set_xlabel("explained by (target interpreter)")
        ax.set_ylabel("built against (source)")
        ax.set_title(_label(victim))
        ax.spines[:].set_visible(False)
    cbar = fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, ticks=[-3, -2, -1, 0, 1, 2, 3])
    cbar.ax.set_yticklabels(["1/8", "1/4", "1/2", "1", "2", "4", "8"])
    cbar.set_label("L1 / L1 of PGD (same column)")
    fig.suptitle(title)
    return fig


# =========================================================================== image grids
def _image(x: torch.Tensor) -> np.ndarray:
    x = x.detach().cpu().float()
    if x.dim() == 4:
        x = x[0]
    return x[0].numpy() if x.shape[0] == 1 else x.permute(1, 2, 0).numpy()


def _map_on(m: torch.Tensor, size) -> np.ndarray:
    from .interpreters.base import upsample_map

    m = m.detach().cpu().float()
    m = m.view(1, 1, *m.shape[-2:])
    return upsample_map(m, size)[0, 0].numpy()


def show_panel(ax, image: torch.Tensor | None = None, map: torch.Tensor | None = None, title: str = "",
               alpha: float = 0.55) -> None:
    """One panel: an image (grey or RGB), optionally overlaid with a map (JET)."""
    ax.set_xticks([]), ax.set_yticks([])
    for s in ax.spines.values():
        s.set_visible(False)
    if image is not None:
        img = _image(image)
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
        size = img.shape[:2]
        if map is not None:
            ax.imshow(_map_on(map, size), cmap=MAP_CMAP, vmin=0, vmax=1, alpha=alpha, interpolation="bilinear")
    elif map is not None:
        ax.imshow(map.detach().cpu().float().reshape(map.shape[-2:]).numpy(), cmap=MAP_CMAP, vmin=0, vmax=1,
                  interpolation="nearest")
    if title:
        ax.set_title(title, fontsize=7.5)


def _grid(rows: list[list[dict]], row_labels: Sequence[str], col_labels: Sequence[str] | None = None,
          cell: float = 1.25) -> Figure:
    ncols = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(cell * ncols + 0.6, (cell + 0.3) * len(rows)),
                             squeeze=False)
    for i, row in enumerate(rows):
        for j in range(ncols):
            ax = axes[i][j]
            if j < len(row) and row[j] is not None:
                show_panel(ax, **row[j])
            else:
                ax.axis("off")
        axes[i][0].set_ylabel(row_labels[i], fontsize=8.5)
    if col_labels:
        for j, label in enumerate(col_labels):
            axes[0][j].annotate(label, (0.5, 1.32 if axes[0][j].get_title() else 1.06), xycoords="axes fraction", ha="center", va="bottom",
                                fontsize=8.5, fontweight="bold")
    return fig


def _lookup(examples: pd.DataFrame, interpreter, attack, position) -> pd.Series | None:
    sel = examples
    if "interpreter" in sel:
        sel = sel[sel["interpreter"] == interpreter]
    sel = sel[(sel["attack"] == attack) & (sel["position"] == position)]
    return None if sel.empty else sel.iloc[0]


def _short(name: str, n: int = 11) -> str:
    return name if len(name) <= n else name[: n - 1] + "…"


def attack_grid(result, example: int = 0, classes: Sequence[str] | None = None,
                interpreters: Sequence[str] | None = None) -> Figure:
    """Benign, PGD and ADV2 versions of one image with their maps, one row per interpreter
    (the paper's qualitative figure). Maps are for the true class (benign) and the target
    class (PGD, ADV2); titles give the prediction, p(target) and L1 to the benign map."""
    classes = classes or class_names(result.profile)
    interps = [i for i in (interpreters or INTERPRETERS) if i in result.figures]
    rows, labels = [], []
    for name in interps:
        f = result.figures[name]
        y, ct = int(f["true_class"][example]), int(f["target_class"][example])
        pos = _position(result, name, example)
        cells = [{"image": f["x"][example], "title": f"benign: {_short(classes[y])}"},
                 {"image": f["x"][example], "map": f["benign_map"][example], "title": "benign map"}]
        for attack, x_key, m_key in (("pgd", "x_pgd", "pgd_map"), ("adv2", "x_adv", "adv_map")):
            row = _lookup(result.examples, name, attack, pos)
            pred = classes[int(row["prediction"])] if row is not None else "?"
            conf = f" {row['confidence']:.2f}" if row is not None else ""
            l1 = f"L1 {row['l1_benign']:.3f}" if row is not None else ""
            cells += [{"image": f[x_key][example], "title": f"{_label(attack)}: {_short(pred)}{conf}"},
                      {"image": f[x_key][example], "map": f[m_key][example], "title": l1}]
        rows.append(cells)
        labels.append(_label(name))
    target = classes[int(result.figures[interps[0]]["target_class"][example])] if interps else ""
    return _grid(rows, labels, ["benign", "", "PGD", "", "ADV2", ""][:6]) if rows else plt.figure()


def _position(result, interpreter, example) -> int:
    f = result.figures[interpreter]
    if "index" in f and "index" in result.examples:
        idx = int(f["index"][example])
        sel = result.examples[(result.examples.get("interpreter", interpreter) == interpreter)
                              & (result.examples["index"] == idx)]
        if not sel.empty:
            return int(sel["position"].iloc[0])
    return example


def patch_grid(result, example: int = 0, classes: Sequence[str] | None = None) -> Figure:
    """Figure-11-like grid: per interpreter, the benign map, the random patch target and the
    ADV2 input with its map (Δb and Δt in the title)."""
    classes = classes or class_names(result.profile)
    interps = [i for i in INTERPRETERS if i in result.figures]
    rows = []
    for name in interps:
        f = result.figures[name]
        y = int(f["true_class"][example])
        row = _lookup(result.examples, name, "adv2", _position(result, name, example))
        pred = classes[int(row["prediction"])] if row is not None else "?"
        rows.append([
            {"image": f["x"][example], "map": f["benign_map"][example], "title": f"benign: {_short(classes[y])}"},
            {"map": f["target_map"][example], "title": "target map"},
            {"image": f["x_adv"][example], "title": f"ADV2: {_short(pred)} {row['confidence']:.2f}" if row is not None else "ADV2"},
            {"image": f["x_adv"][example], "map": f["adv_map"][example],
             "title": f"Δb {row['l1_benign']:.2f}  Δt {row['l1_target']:.2f}" if row is not None else ""},
        ])
    return _grid(rows, [_label(i) for i in interps], ["benign + map", "target", "ADV2", "ADV2 map"])


def random_class_grid(result, example: int = 0, classes: Sequence[str] | None = None) -> Figure:
    """Per interpreter: the benign input with its map, the target input (another class) with
    the target map, and the ADV2 input with its map (classified as ``ct``, explained like the
    target input)."""
    classes = classes or class_names(result.profile)
    interps = [i for i in INTERPRETERS if i in result.figures]
    rows = []
    for name in interps:
        f = result.figures[name]
        y, src = int(f["true_class"][example]), int(f["source_class"][example])
        row = _lookup(result.examples, name, "adv2", _position(result, name, example))
        pred = classes[int(row["prediction"])] if row is not None else "?"
        rows.append([
            {"image": f["x"][example], "map": f["benign_map"][example], "title": f"benign: {_short(classes[y])}"},
            {"image": f["target_image"][example], "map": f["target_map"][example],
             "title": f"target: {_short(classes[src])}"},
            {"image": f["x_adv"][example], "title": f"ADV2: {_short(pred)} {row['confidence']:.2f}" if row is not None else "ADV2"},
            {"image": f["x_adv"][example], "map": f["adv_map"][example],
             "title": f"L1 to target {row['l1_target']:.2f}" if row is not None else ""},
        ])
    return _grid(rows, [_label(i) for i in interps], ["benign + map", "target input + map", "ADV2", "ADV2 map"])


def _benign_images(result, n: int) -> torch.Tensor | None:
    """The first ``n`` attacked images of ``result`` (by selection rank), from the test set."""
    try:
        from .data import load_test_set

        ex = result.examples.drop_duplicates("position").set_index("position").sort_index()
        return load_test_set(result.profile).tensors([int(i) for i in ex["index"].iloc[:n]])[0]
    except Exception:  # noqa: BLE001 - the benign row then shows bare maps
        return None


def transfer_grid(result, example: int = 0, benign_image: torch.Tensor | None = None) -> Figure:
    """One input's maps across interpreters: rows = the benign input and the adversarial inputs
    built against each source (plus PGD); columns = the input, then its map under each
    interpreter (for the true class on the benign row, the target class elsewhere)."""
    figs = result.figures
    targets = [t for t in INTERPRETERS if t in figs.get("benign", {})]
    if benign_image is None:
        benign_image = _benign_images(result, example + 1)
    sources = [s for s in (*INTERPRETERS, "pgd") if s in figs and s != "benign"]
    x0 = benign_image[example] if benign_image is not None else None
    rows = [[{"image": x0} if x0 is not None else None]
            + [{"image": x0, "map": figs["benign"][t][example]} for t in targets]]
    for s in sources:
        x_adv = figs[s]["x_adv"][example]
        rows.append([{"image": x_adv}] + [{"image": x_adv, "map": figs[s]["maps"][t][example]} for t in targets])
    labels = ["benign"] + [f"ADV2 vs {_label(s)}" if s != "pgd" else "PGD" for s in sources]
    return _grid(rows, labels, ["input"] + [f"{_label(t)} map" for t in targets])


def one_picture(result, interpreter: str = "cam", example: int = 0, classes: Sequence[str] | None = None) -> Figure:
    """ADV2 in one picture: a benign input, a PGD input and an ADV2 input, what the classifier
    says about each and what the interpreter shows."""
    classes = classes or class_names(result.profile)
    f = result.figures[interpreter]
    y, ct = int(f["true_class"][example]), int(f["target_class"][example])
    pos = _position(result, interpreter, example)
    fig, axes = plt.subplots(2, 3, figsize=(6.4, 4.6))
    columns = [("benign", "x", "benign_map", None), ("pgd", "x_pgd", "pgd_map", "pgd"), ("adv2", "x_adv", "adv_map", "adv2")]
    for j, (name, x_key, m_key, attack) in enumerate(columns):
        if attack is None:
            verdict = f"classified: {classes[y]}"
            explained = f"{_label(interpreter)} map for {classes[y]}\n(the benign map)"
        else:
            row = _lookup(result.examples, interpreter, attack, pos)
            verdict = f"classified: {classes[int(row['prediction'])]} (p = {row['confidence']:.2f})"
            explained = f"{_label(interpreter)} map for {classes[ct]}\nL1 to the benign map: {row['l1_benign']:.3f}"
        heading = {"benign": "benign input", "pgd": "PGD adversarial input", "adv2": "ADV2 adversarial input"}[name]
        show_panel(axes[0][j], f[x_key][example], title=f"{heading}\n{verdict}")
        show_panel(axes[1][j], f[x_key][example], f[m_key][example], title=explained)
    axes[0][0].set_ylabel("what the classifier sees", fontsize=8.5)
    axes[1][0].set_ylabel(f"what {_label(interpreter)} shows", fontsize=8.5)
    fig.suptitle(f"Target class of both attacks: {classes[ct]}", fontsize=9.5)
    return fig


def confidence_curves(table: pd.DataFrame, floors: dict | None = None) -> Figure:
    """What a confident attacker pays (:func:`adv2lib.report.ablation.confidence_table`): mean L1
    of ADV2's map to the benign map against the required confidence ``p(ct) >= c`` (x:
    argmax only, then each level), for choosing among the iterates of the argmax-only attack
    (circles) and for the attack that holds ``c`` (squares); one panel per victim x interpreter.
    Dashed: PGD on the same images; dotted: the interpreter's noise floor when ``floors``
    (``{(victim, interpreter): L1}``) gives it."""
    victims = list(dict.fromkeys(table["victim"]))
    interps = list(dict.fromkeys(table["interpreter"]))
    fig, axes = plt.subplots(len(victims), len(interps), figsize=(2.6 * len(interps), 2.3 * len(victims)),
                             sharex=True, squeeze=False)
    levels = sorted(table.loc[table["_required"] >= 0, "_required"].unique())
    pos = {c: k for k, c in enumerate(levels)}
    for a, v in enumerate(victims):
        for b, i in enumerate(interps):
            ax = axes[a][b]
            sub = table[(table["victim"] == v) & (table["interpreter"] == i)]
            for rule, marker, colour, name in (("select", "o", COLORS["adv2"], "selection among iterates"),
                                               ("hold", "s", "#9467bd", "attack holds p(ct) ≥ c")):
                g = sub[sub["_rule"] == rule].sort_values("_required")
                if rule == "hold":      # holding "argmax only" is the selection run itself
                    g = pd.concat([sub[(sub["_rule"] == "select") & (sub["_required"] == 0)], g])
                ax.plot([pos[c] for c in g["_required"]], g["L1 to benign"], marker=marker, ms=4, lw=1.2,
                        color=colour, label=name)
            pgd = sub[sub["_rule"] == "pgd"]
            if len(pgd):
                ax.axhline(float(pgd["L1 to benign"].iloc[0]), ls="--", lw=1, color=COLORS["pgd"], label="PGD")
            floor = {(_label(a), _label(b)): x for (a, b), x in (floors or {}).items()}.get((v, i))
            if floor is not None:
                ax.axhline(floor, ls=":", lw=1.2, color="black", label="noise floor")
            ax.set_xticks(range(len(levels)), ["argmax" if c == 0 else f"{c:g}" for c in levels])
            ax.set_ylim(bottom=0)
            if a == 0:
                ax.set_title(i)
            if b == 0:
                ax.set_ylabel(f"{v}\nL1 to benign map")
            if a == len(victims) - 1:
                ax.set_xlabel("required p(ct)")
    handles, labels = [], []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h), labels.append(lab)
    fig.legend(handles, labels, loc="outside upper center", ncols=len(handles), frameon=False)
    return fig


def ablation_bars(table: pd.DataFrame, criterion: float = 0.5) -> Figure:
    """The ablations (:func:`adv2lib.report.ablation.ablation_table`): the ratio of ADV2's L1 to
    PGD's (same images, same interpreter) per variant, one panel per interpreter, one bar
    colour per victim; the paper's criterion (ADV2 at most half of PGD) is the dashed line."""
    interps = list(dict.fromkeys(table["interpreter"]))
    victims = list(dict.fromkeys(table["victim"]))
    colours = dict(zip(victims, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    fig, axes = plt.subplots(1, len(interps), figsize=(4.2 * len(interps), 3.0), squeeze=False)
    for b, i in enumerate(interps):
        ax = axes[0][b]
        sub = table[table["interpreter"] == i]
        variants = list(dict.fromkeys(sub["variant"]))
        width = 0.8 / max(1, len(victims))
        for k, v in enumerate(victims):
            g = sub[sub["victim"] == v].set_index("variant")
            ys = [float(g.loc[var, "L1 / PGD"]) if var in g.index else np.nan for var in variants]
            xs = np.arange(len(variants)) + (k - (len(victims) - 1) / 2) * width
            ax.bar(xs, ys, width, color=colours[v], label=v)
            for x_, y_ in zip(xs, ys):
                if np.isfinite(y_):
                    ax.text(x_, y_ + 0.01, f"{y_:.2f}", ha="center", va="bottom", fontsize=7)
        ax.axhline(criterion, ls="--", lw=1, color=COLORS["pgd"], label="criterion (½ PGD)")
        ax.set_xticks(range(len(variants)), variants, rotation=25, ha="right")
        ax.set_title(i)
        ax.set_ylim(0, max(1.0, float(np.nanmax(sub["L1 / PGD"].to_numpy(dtype=float))) + 0.1))
        if b == 0:
            ax.set_ylabel("ADV2 L1 / PGD L1")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=len(handles), frameon=False)
    return fig


def _legend_once(fig, axes, ncols=None) -> None:
    handles, labels = [], []
    for ax in np.ravel(axes):
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h), labels.append(lab)
    fig.legend(handles, labels, loc="outside upper center", ncols=ncols or min(6, len(handles)), frameon=False)


def robustness_curves(table: pd.DataFrame, floors: dict | None = None) -> Figure:
    """Disparate attack robustness (:func:`adv2lib.report.defences.robustness_table`), one row per
    victim: ADV2's mean L1 to the benign map against the L-inf budget (PGD at the same budget
    dashed, the interpreter's noise floor dotted where ``floors`` gives a non-zero one), ADV2's
    ASR against the L-inf budget (PGD's dashed), and the L1 against the stage-2 iteration budget
    (at the preset's L-inf budget); one colour per interpreter."""
    victims = list(dict.fromkeys(table["victim"]))
    interps = list(dict.fromkeys(table["interpreter"]))
    colours = dict(zip(interps, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    fig, axes = plt.subplots(len(victims), 3, figsize=(10.5, 2.7 * len(victims)), squeeze=False)
    floor_of = {(_label(a), _label(b)): x for (a, b), x in (floors or {}).items()}
    for r, v in enumerate(victims):
        for i in interps:
            sub = table[(table["victim"] == v) & (table["interpreter"] == i)]
            eps = sub[sub["sweep"] == "L-inf budget"].sort_values("eps (/255)")
            its = sub[sub["sweep"] == "iterations"].sort_values("iterations (x preset)")
            c = colours[i]
            axes[r][0].plot(eps["eps (/255)"], eps["L1 to benign"], marker="o", ms=4, lw=1.3, color=c, label=f"ADV2, {i}")
            axes[r][0].plot(eps["eps (/255)"], eps["PGD L1"], ls="--", lw=1, color=c, label=f"PGD, {i}")
            axes[r][1].plot(eps["eps (/255)"], eps["ASR"], marker="o", ms=4, lw=1.3, color=c, label=f"ADV2, {i}")
            axes[r][2].plot(its["iterations (x preset)"], its["L1 to benign"], marker="s", ms=4, lw=1.3, color=c,
                            label=f"ADV2, {i}")
            if len(its):
                axes[r][2].axhline(float(its["PGD L1"].iloc[0]), ls="--", lw=1, color=c, label=f"PGD, {i}")
            floor = floor_of.get((v, i))
            if floor:
                for ax in (axes[r][0], axes[r][2]):
                    ax.axhline(floor, ls=":", lw=1.2, color=c, label=f"noise floor, {i}")
        pgd_asr = table[(table["victim"] == v) & (table["sweep"] == "L-inf budget")].drop_duplicates("eps (/255)")
        pgd_asr = pgd_asr.sort_values("eps (/255)")
        axes[r][1].plot(pgd_asr["eps (/255)"], pgd_asr["PGD ASR"], ls="--", lw=1, color="black", label="PGD")
        axes[r][0].set_ylabel(f"{v}\nL1 to benign map")
        axes[r][1].set_ylabel("ASR")
        axes[r][1].set_ylim(-0.03, 1.03)
        for ax in (axes[r][0], axes[r][1]):
            ax.set_xlabel("L-inf budget (/255)")
        axes[r][2].set_xscale("log", base=2)
        ticks = sorted(table.loc[table["sweep"] == "iterations", "iterations (x preset)"].unique())
        axes[r][2].set_xticks(ticks, [f"{t:g}x" for t in ticks])
        axes[r][2].set_xlabel("stage-2 iterations (x preset)")
        axes[r][2].set_ylim(bottom=0)
        axes[r][0].set_ylim(bottom=0)
    _legend_once(fig, axes, ncols=4)
    return fig


def roc_curves(examples: pd.DataFrame, ensemble: str = "all") -> Figure:
    """The ensemble detector's ROC curves (:func:`adv2lib.ensemble.roc`): one row per victim, one
    column per disagreement score, one curve per kind of input (successful attacks) against the
    clean evaluation images; the dot marks the threshold set at 5 % false positives on the
    held-out clean images (its x is the false-positive rate it gives on the evaluation images)."""
    from .ensemble import roc

    det = examples[(examples.get("kind") == "detection") & (examples["ensemble"] == ensemble)]
    victims = list(dict.fromkeys(det["victim"]))
    scores = list(dict.fromkeys(det["score_kind"]))
    fig, axes = plt.subplots(len(victims), len(scores), figsize=(3.6 * len(scores), 3.1 * len(victims)),
                             squeeze=False)
    sources = [s for s in dict.fromkeys(det["source"]) if s not in ("benign", "calibration")]
    colours = dict(zip(sources, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for r, v in enumerate(victims):
        for c, k in enumerate(scores):
            ax = axes[r][c]
            g = det[(det["victim"] == v) & (det["score_kind"] == k)]
            clean = g[g["source"] == "benign"]
            threshold = float(g["threshold"].iloc[0])
            fpr_at = float((clean["score"] > threshold).mean())
            for s in sources:
                h = g[(g["source"] == s) & g["success"].astype(bool)]
                if h.empty:
                    continue
                curve = roc(clean["score"], h["score"])
                name = f"ADV2 vs {_label(s[5:])}" if s.startswith("adv2 ") else {"pgd": "PGD",
                                                                                  "adaptive": "adaptive ADV2"}.get(s, s)
                ax.plot(curve["fpr"], curve["tpr"], lw=1.3, color=colours[s], label=name,
                        ls="-" if s != "adaptive" else "--")
                ax.plot([fpr_at], [float(h["flagged"].mean())], "o", ms=4, color=colours[s])
                ax.text(0.98, 0.04 + 0.075 * sources.index(s), f"AUC {curve['auc']:.2f}", color=colours[s],
                        ha="right", fontsize=7, transform=ax.transAxes)
            ax.plot([0, 1], [0, 1], ls=":", lw=1, color="grey")
            ax.set_xlim(0, 1), ax.set_ylim(0, 1.01)
            ax.set_title(f"{_label(v)}, {k} score")
            ax.set_xlabel("false-positive rate (clean)")
            if c == 0:
                ax.set_ylabel("detection rate")
    _legend_once(fig, axes)
    return fig


def aid_bars(table: pd.DataFrame) -> Figure:
    """AID's effect (:func:`adv2lib.report.defences.aid_table`): ADV2's L1 to the benign map over
    PGD's (left) and its ASR (right) against the original and the hardened RTS, per victim and
    iteration budget."""
    fig, axes = plt.subplots(1, 2, figsize=(8.0, 2.9), squeeze=False)
    keys = list(dict.fromkeys(zip(table["victim"], table["iterations (x preset)"])))
    colours = {"original": COLORS["benign"], "AID": COLORS["adv2"]}
    for b, (col, name) in enumerate((("L1 / PGD", "ADV2 L1 / PGD L1"), ("ASR", "ADV2 ASR"))):
        ax = axes[0][b]
        for k, version in enumerate(("original", "AID")):
            g = table[table["RTS"] == version].set_index(["victim", "iterations (x preset)"])
            ys = [float(g.loc[key, col]) if key in g.index else np.nan for key in keys]
            xs = np.arange(len(keys)) + (k - 0.5) * 0.38
            ax.bar(xs, ys, 0.38, color=colours[version], label=f"{version} RTS")
            for x_, y_ in zip(xs, ys):
                if np.isfinite(y_):
                    ax.text(x_, y_ + 0.01, f"{y_:.2f}", ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(keys)), [f"{v}, {f:g}x" for v, f in keys])
        ax.set_ylabel(name)
        ax.set_ylim(0, 1.1 if col == "ASR" else None)
    _legend_once(fig, axes)
    return fig


# =========================================================================== estimates with intervals (seaborn)
def interval_plot(frame: pd.DataFrame, x: str, color: str | None = None, col: str | None = None,
                  row: str | None = None, kind: str = "bar", ylabel: str = "", xlabel: str = "",
                  logx: bool = False, size: tuple[float, float] | None = None, sharey: bool = True) -> Figure:
    """Estimates with their 95% intervals (a tidy frame with ``estimate``, ``lo``, ``hi``, e.g. from
    :mod:`adv2lib.report.estimates`), drawn with :mod:`seaborn.objects`: dodged bars with interval
    lines (``kind="bar"``) or points joined by lines with interval lines (``kind="line"``), one
    colour per value of ``color``, one panel per value of ``col`` (and ``row``). Raw values are
    shown by their labels; the order of a column is its order in ``frame``. The intervals are
    drawn as they were computed (:mod:`adv2lib.stats`), never recomputed here.
    """
    import seaborn as sns
    import seaborn.objects as so

    from .report.present import label as _display

    df = frame.copy()
    for c in (x, color, col, row):
        if c is not None and c in df and not (c == x and kind == "line"):
            df[c] = df[c].map(_display)
    panels = (df[col].nunique() if col else 1, df[row].nunique() if row else 1)
    fig = plt.figure(figsize=size or (3.4 * panels[0] + 1.2, 2.7 * panels[1]))
    plot = so.Plot(df, x=x, y="estimate", ymin="lo", ymax="hi", **({"color": color} if color else {}))
    if col or row:
        plot = plot.facet(**({"col": col} if col else {}), **({"row": row} if row else {}))
    if kind == "bar":
        plot = plot.add(so.Bar(), so.Dodge()).add(so.Range(color="black", linewidth=1), so.Dodge())
    else:
        plot = plot.add(so.Line(marker="o", pointsize=4)).add(so.Range(linewidth=1.2))
    if logx:
        plot = plot.scale(x=so.Continuous(trans="log"))
    plot = plot.share(y=sharey).label(x=xlabel, y=ylabel, color="").theme({**sns.axes_style("ticks"),
                                                                          **matplotlib.rcParams})
    plot.on(fig).plot()
    return fig


def reference_line(fig: Figure, values: dict, panel_of=None, style: str = "--", color: str = "black",
                   name: str | None = None) -> None:
    """Horizontal reference lines on a figure's panels: ``values`` maps a panel title (the label
    of its ``col`` value) to a value; ``panel_of`` all panels when ``values`` is a number."""
    for ax in fig.axes:
        title = ax.get_title()
        v = values if isinstance(values, (int, float)) else values.get(title, values.get(title.split(" | ")[0]))
        if v is not None and np.isfinite(v):
            ax.axhline(v, ls=style, color=color, lw=1, label=name)
