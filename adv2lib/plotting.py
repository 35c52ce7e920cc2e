"""Figures and display tables of the book, drawn from the experiments' results.

Every function takes what :mod:`adv2lib.experiments` returns (an
:class:`~adv2lib.experiments.ExperimentResult`, or a list of them, one per victim, or the
tidy frames inside them) and returns a matplotlib ``Figure`` or a pandas object; nothing
here computes an attack or a metric. Maps are drawn at their native resolution, upsampled
bilinearly only for display (:func:`adv2lib.interpreters.upsample_map`) and overlaid on the
image as JET heat maps, as the paper's figures do.

>>> results = [run_main(victim=v, smoke=True) for v in ("resnet", "densenet")]   # doctest: +SKIP
>>> l1_bars(combine(results, "examples"))                                        # doctest: +SKIP
"""
from __future__ import annotations

from typing import Sequence

import matplotlib

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from .names import INTERPRETERS, LABELS, VICTIMS
from .report.present import in_order

__all__ = [
    "LABELS", "book_style", "class_names", "combine", "l1_bars", "iou_curves",
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
    """Test accuracy after each training epoch, from the model cards' ``history``, with its Wilson
    95% interval on the card's test images as a band."""
    from . import stats

    fig, ax = plt.subplots(figsize=(4.2, 2.6))
    for card in cards:
        hist = card.get("history") or []
        epochs = [h.get("epoch") for h in hist if "test_accuracy" in h]
        acc = [h["test_accuracy"] for h in hist if "test_accuracy" in h]
        if epochs:
            line, = ax.plot(epochs, acc, marker="o", ms=3, label=_label(card.get("name", "?")))
            n = int(card.get("test_images") or 0)
            if n:
                ivs = [stats.rate(k=int(round(a * n)), n=n) for a in acc]
                ax.fill_between(epochs, [iv.lo for iv in ivs], [iv.hi for iv in ivs], color=line.get_color(),
                                alpha=0.25, lw=0)
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


# =========================================================================== bar and line charts
def l1_bars(rows: pd.DataFrame, metric: str = "l1_benign", attacks: Sequence[str] = ("pgd", "adv2"),
            ylabel: str = "L1 distance to the benign map", floors: dict | None = None) -> Figure:
    """Mean L1 distance of the PGD and ADV2 maps to the benign map (or ``metric``) over successful
    attacks, with 95% intervals (:func:`adv2lib.report.tables.main_table`; ``rows`` may be that
    frame already), one panel per interpreter (rows: victims, when more than one; a shared y
    scale per interpreter, since L1 values compare within an interpreter only). ``floors``
    (``{(victim, interpreter): L1}``) draws each interpreter's noise floor as a dotted line."""
    from .report.tables import main_table

    est = rows if "estimate" in rows.columns else main_table(rows, [metric], attacks)
    est = est[(est["metric"] == metric) & est["attack"].isin(attacks)]
    row = "victim" if est["victim"].nunique() > 1 else None
    ncol, nrow = est["interpreter"].nunique(), est["victim"].nunique() if row else 1
    fig = interval_plot(est, x="attack", col="interpreter", row=row, kind="bar", ylabel=ylabel,
                        sharey="col", size=(1.9 * ncol + 1.2, 2.3 * nrow))
    reference_line(fig, _panel_values(_floor_frame(floors), row), style=":", name="noise floor")
    return fig


def _panel_values(frame: pd.DataFrame, row: str | None, value: str = "estimate") -> dict:
    """``{panel title: value}`` for :func:`reference_line` on an :func:`interval_plot` faceted by
    interpreter (columns) and, when ``row``, by victim (rows)."""
    from .report.present import label

    out = {}
    for _, r in frame.iterrows():
        title = label(r["interpreter"]) + (f" | {label(r['victim'])}" if row else "")
        out[title] = float(r[value])
    return out


def _floor_frame(floors: dict | None) -> pd.DataFrame:
    return pd.DataFrame([{"victim": v, "interpreter": i, "estimate": x} for (v, i), x in (floors or {}).items()],
                        columns=["victim", "interpreter", "estimate"])


def budget_curves(rows: pd.DataFrame, floors: dict | None = None, metric: str = "l1_benign",
                  xlabel: str = "stage-2 iterations (x preset)", tick: str = "{:g}x") -> Figure:
    """The budget experiment (:func:`adv2lib.experiments.run_budget`): ADV2's ``metric`` (mean over
    successful attacks: ``"l1_benign"``, the L1 distance to the benign map, ``"mc"`` or
    ``"iou_benign_mean"``) against its stage-2 budget (column ``budget``: x the preset, log scale;
    another unit with ``xlabel`` and the ticks' format ``tick``), with 95% intervals
    (:func:`adv2lib.report.budget.budget_estimates`); one panel per interpreter (rows: victims,
    when more than one). Dashed: PGD on the same images; dotted (L1 only): the interpreter's
    noise floor (``floors``, ``{(victim, interpreter): L1}``)."""
    from .report.budget import budget_estimates
    from .report.present import METRIC_LABELS

    est = budget_estimates(rows)
    est = est[est["metric"] == metric]
    adv, pgd = est[est["attack"] == "adv2"], est[est["attack"] == "pgd"]
    row = "victim" if adv["victim"].nunique() > 1 else None
    fig = interval_plot(adv, x="budget", col="interpreter", row=row, kind="line", logx=True,
                        ylabel=METRIC_LABELS.get(metric, metric), xlabel=xlabel,
                        sharey="col" if metric.startswith("l1_") else True)   # L1 compares within an interpreter
    reference_line(fig, _panel_values(pgd, row), style="--", color=COLORS["pgd"], name="PGD")
    if metric == "l1_benign":
        reference_line(fig, _panel_values(_floor_frame(floors), row), style=":", name="noise floor")
    ticks = sorted(adv["budget"].dropna().unique())
    for ax in fig.axes:
        ax.set_xticks(ticks, [tick.format(t) for t in ticks])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    return fig


def iou_curves(rows: pd.DataFrame, reference: str = "benign", attacks: Sequence[str] = ("pgd", "adv2")) -> Figure:
    """The IoU test: mean IoU (over successful attacks) between the top-k cells of the attack's map
    and of the ``reference`` map against k, with 95% intervals per k
    (:func:`adv2lib.report.tables.iou_by_k`; ``rows`` may be that frame already); one panel per
    interpreter (rows: victims, when more than one), one curve per attack."""
    from .report.tables import iou_by_k

    est = rows if "estimate" in rows.columns else iou_by_k(rows, reference, attacks)
    est = est[est["attack"].isin(attacks)]
    row = "victim" if est["victim"].nunique() > 1 else None
    ncol, nrow = est["interpreter"].nunique(), est["victim"].nunique() if row else 1
    fig = interval_plot(est, x="k", color="attack", col="interpreter", row=row, kind="line",
                        ylabel=f"IoU with the {reference} map", xlabel="k (share of cells kept)",
                        size=(1.9 * ncol + 1.2, 2.2 * nrow))
    for ax in fig.axes:
        ax.set_ylim(0, 1.02)
    return fig


def reference_bars(rows: pd.DataFrame, attack: str = "adv2") -> Figure:
    """The paper's two-panel similarity chart, per victim (rows): (a) the L1 distance of the
    ADV2 map to the benign map and to the target map, (b) the mean IoU (over k) with each, per
    interpreter, over successful attacks, with 95% intervals
    (:func:`adv2lib.report.tables.main_table`; ``rows`` may be that frame already). Used by the
    patch chapter (Table 7's Δb and Δt) and the random-class chapter, whose experiment the
    paper's chart most likely shows (its L1 axis stops below Table 7's Δb values)."""
    from .report.tables import main_table

    panels = {"l1_benign": ("(a) L1 distance", "benign"), "l1_target": ("(a) L1 distance", "target"),
              "iou_benign_mean": ("(b) mean IoU", "benign"), "iou_target_mean": ("(b) mean IoU", "target")}
    est = rows if "estimate" in rows.columns else main_table(rows, list(panels), (attack,))
    est = est[(est["attack"] == attack) & est["metric"].isin(list(panels))]
    est = est.assign(measure=est["metric"].map(lambda m: panels[m][0]),
                     reference=est["metric"].map(lambda m: f"w.r.t. the {panels[m][1]} map"))
    row = "victim" if est["victim"].nunique() > 1 else None
    nrow = est["victim"].nunique() if row else 1
    return interval_plot(est, x="interpreter", color="reference", col="measure", row=row, kind="bar",
                         sharey="col", size=(7.6, 2.5 * nrow))


def transfer_heatmaps(rows: pd.DataFrame, title: str = "L1 distance to the benign map of the interpreter explaining"
                      ) -> Figure:
    """Table 9 analogue: one annotated heat map per victim (rows = the interpreter the ADV2 inputs
    were built against, then PGD; columns = the interpreter that explains them), from the
    transfer rows or :func:`adv2lib.report.tables.transfer_table`.

    Each entry is annotated with its mean L1 distance and 95% interval. Because L1 values are
    only comparable within one interpreter (column), the colour is each entry divided by the
    PGD entry of its column: below 1 (blue), the map is closer to the benign map than a plain
    PGD input's.
    """
    from .report.tables import transfer_matrices

    mats = {k: transfer_matrices(rows, k) for k in ("estimate", "lo", "hi")}
    victims = list(mats["estimate"])
    fig, axes = plt.subplots(1, len(victims), figsize=(5.4 * len(victims), 3.8), squeeze=False)
    image = None
    for ax, victim in zip(axes[0], victims):
        matrix = mats["estimate"][victim]
        values = matrix.to_numpy(dtype=float)
        lo, hi = mats["lo"][victim].to_numpy(dtype=float), mats["hi"][victim].to_numpy(dtype=float)
        ref = matrix.loc["pgd"].to_numpy(dtype=float) if "pgd" in matrix.index else np.nanmax(values, 0)
        ratio = values / np.where(ref > 0, ref, np.nan)
        image = ax.imshow(np.log2(ratio), cmap="coolwarm", vmin=-3, vmax=3, aspect="auto")
        for (r, c), v in np.ndenumerate(values):
            interval = f"\n[{lo[r, c]:.3f}, {hi[r, c]:.3f}]" if np.isfinite(lo[r, c]) and np.isfinite(hi[r, c]) else ""
            ax.text(c, r, f"{v:.3f}{interval}", ha="center", va="center", fontsize=6.5,
                    fontweight="bold" if matrix.index[r] == matrix.columns[c] else "normal")
        ax.set_xticks(range(values.shape[1]), [_label(c) for c in matrix.columns])
        ax.set_yticks(range(values.shape[0]), [_label(r) for r in matrix.index])
        ax.set_xlabel("explained by")
        ax.set_ylabel("built against")
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


def confidence_curves(rows: pd.DataFrame, floors: dict | None = None) -> Figure:
    """What a confident attacker pays (:func:`adv2lib.report.ablation.confidence_estimates`): ADV2's
    mean L1 to the benign map, with 95% intervals, against the required confidence ``p(ct) >= c``
    (argmax only, then each level), for choosing among the iterates of the argmax-only attack and
    for the attack that holds ``c`` (its curve starts from the argmax-only point); one panel per
    interpreter (rows: victims, when more than one). Dashed: PGD on the same images; dotted: the
    interpreter's noise floor when ``floors`` (``{(victim, interpreter): L1}``) gives it."""
    from .report.ablation import confidence_estimates

    est = confidence_estimates(rows)
    est = est[est["metric"] == "l1_benign"]
    adv, pgd = est[est["attack"] == "adv2"], est[est["attack"] == "pgd"]
    start = adv[(adv["rule"] == "select") & (adv["level"] == 0)].assign(rule="hold")
    curve = pd.concat([adv, start], ignore_index=True)
    curve = curve.assign(_r=(curve["rule"] == "hold").astype(int)).sort_values(["_r", "level"], kind="stable")
    curve["required p(ct)"] = ["argmax only" if c == 0 else f"{c:g}" for c in curve["level"]]
    row = "victim" if adv["victim"].nunique() > 1 else None
    fig = interval_plot(curve, x="required p(ct)", color="rule", col="interpreter", row=row, kind="line",
                        ylabel="L1 to the benign map", xlabel="required p(ct)", sharey="col")
    reference_line(fig, _panel_values(pgd, row), style="--", color=COLORS["pgd"], name="PGD")
    reference_line(fig, _panel_values(_floor_frame(floors), row), style=":", name="noise floor")
    return fig


def ablation_bars(rows: pd.DataFrame) -> Figure:
    """The ablations (:func:`adv2lib.report.ablation.ablation_estimates`): ADV2's L1 to the benign
    map over PGD's on the same images (same interpreter), per interpreter and variant, with 95%
    intervals; one panel per victim. Dashed: the main experiment's criterion (ADV2 at most half
    of PGD's distance, :data:`adv2lib.report.ablation.CRITERION`)."""
    from .report.ablation import CRITERION, ablation_estimates
    from .report.present import label

    est = ablation_estimates(rows)
    ratio = est[est["metric"] == "l1_benign ratio"]
    ratio = ratio.assign(variant=[f"{label(i)}: {v}" for i, v in zip(ratio["interpreter"], ratio["variant"])])
    n = ratio["variant"].nunique()
    fig = interval_plot(ratio, x="variant", col="victim", kind="bar", ylabel="ADV2 L1 / PGD L1 (same images)",
                        size=(max(4.0, 0.5 * n) * ratio["victim"].nunique() + 1.0, 3.6))
    reference_line(fig, CRITERION, style="--", color=COLORS["pgd"], name="criterion")
    for ax in fig.axes:
        ax.tick_params(axis="x", labelrotation=35)
        for t in ax.get_xticklabels():
            t.set_horizontalalignment("right")
    return fig


def _legend_once(fig, axes, ncols=None) -> None:
    handles, labels = [], []
    for ax in np.ravel(axes):
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h), labels.append(lab)
    fig.legend(handles, labels, loc="outside upper center", ncols=ncols or min(6, len(handles)), frameon=False)


def robustness_curves(rows: pd.DataFrame, floors: dict | None = None, profile: str = "embedded") -> Figure:
    """Disparate attack robustness with 95% intervals (:func:`adv2lib.report.defences.robustness_estimates`
    of the robustness rows, or that frame itself), drawn with seaborn; one row of panels per
    victim, one colour per interpreter: ADV2's mean L1 to the benign map (successful attacks)
    against the L-inf budget, PGD's at the same budget dashed; ADV2's ASR against the L-inf
    budget, PGD's dashed in black (its success does not depend on the interpreter); the L1
    against the stage-2 iteration budget at the preset's L-inf budget, PGD's there dashed. Dotted:
    the interpreter's noise floor where ``floors`` (``{(victim, interpreter): L1}``) gives a
    non-zero one."""
    import seaborn as sns
    import seaborn.objects as so
    from matplotlib.lines import Line2D

    from .report.defences import preset_eps_255, robustness_estimates
    from .report.present import label

    est = rows if "metric" in rows.columns else robustness_estimates(rows)
    preset = preset_eps_255(profile)
    l1, asr, its = "L1 to the benign map", "ASR", "L1 to the benign map, by iterations"
    parts = []
    for metric, panel in (("l1_benign", l1), ("asr", asr)):
        sel = est[(est["budget"] == 1) & (est["metric"] == metric)].assign(panel=panel, x=lambda f: f["eps_255"])
        if metric == "asr":
            pgd = sel[sel["attack"] == "pgd"].drop_duplicates(["victim", "eps_255"]).assign(interpreter="pgd")
            sel = pd.concat([sel[sel["attack"] != "pgd"], pgd])
        parts.append(sel)
    at = est[np.isclose(est["eps_255"], preset) & (est["metric"] == "l1_benign")]
    budgets = sorted(at.loc[at["attack"] == "adv2", "budget"].dropna().unique())
    pgd = pd.concat([at[at["attack"] == "pgd"].assign(budget=b) for b in budgets])   # one PGD run: drawn flat
    parts.append(pd.concat([at[at["attack"] == "adv2"], pgd]).assign(panel=its, x=lambda f: f["budget"]))
    df = pd.concat(parts, ignore_index=True)
    for c in ("victim", "interpreter", "attack"):
        df[c] = df[c].map(label)
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    interps = [i for i in dict.fromkeys(df["interpreter"]) if i != label("pgd")]
    palette = {**{i: cycle[k % len(cycle)] for k, i in enumerate(interps)}, label("pgd"): "black"}
    victims = list(dict.fromkeys(df["victim"]))
    fig = plt.figure(figsize=(10.5, 2.7 * len(victims) + 0.5))
    (so.Plot(df, x="x", y="estimate", ymin="lo", ymax="hi", color="interpreter", linestyle="attack")
     .facet(col="panel", row="victim", order={"col": [l1, asr, its], "row": victims})
     .add(so.Line(marker="o", pointsize=3, linewidth=1.3), legend=False)
     .add(so.Range(linewidth=1), legend=False)
     .scale(color=so.Nominal(palette), linestyle=so.Nominal({label("adv2"): "-", label("pgd"): "--"}))
     .share(x=False, y=False)
     .label(x="", y="")
     .theme({**sns.axes_style("ticks"), **matplotlib.rcParams})
     .on(fig).plot())
    floor_of = {(label(v), label(i)): x for (v, i), x in (floors or {}).items()}
    eps = sorted(df.loc[df["panel"] == l1, "x"].unique())
    for ax in fig.axes:
        panel, _, victim = ax.get_title().rpartition(" | ")
        if panel == asr:
            ax.set_ylim(-0.03, 1.03)
        else:
            ax.set_ylim(bottom=0)
            for i in interps:
                if floor_of.get((victim, i)):
                    ax.axhline(floor_of[(victim, i)], ls=":", lw=1.2, color=palette[i])
        if panel == its:
            ax.set_xscale("log", base=2)
            ax.set_xticks(budgets, [f"{b:g}x" for b in budgets])
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        else:
            ax.set_xticks(eps, [f"{e:g}" for e in eps])
        if victim == victims[-1]:
            ax.set_xlabel("stage-2 iterations (x preset)" if panel == its else "L-inf budget (/255)")
    handles = [Line2D([], [], color=palette[i], label=i) for i in interps]
    handles += [Line2D([], [], color="grey", ls=s, label=n) for s, n in (("-", "ADV2"), ("--", "PGD"))]
    if any(floor_of.values()):
        handles.append(Line2D([], [], color="grey", ls=":", label="noise floor"))
    fig.legend(handles=handles, loc="outside upper center", ncols=len(handles), frameon=False)
    return fig


def roc_curves(rows: pd.DataFrame, ensemble: str = "all") -> Figure:
    """The ensemble detector's ROC curves (:func:`adv2lib.ensemble.roc`) from the ensemble
    experiment's detection rows: one row per victim, one column per disagreement score, one
    curve per kind of input (``attack`` and ``source_interpreter``; successful attacks) against
    the clean evaluation images, with its AUC and 95% interval
    (:func:`adv2lib.report.defences.auc_interval`); the dot marks the threshold set at 5 % false
    positives on the held-out clean images (its x is the false-positive rate it gives on the
    clean evaluation images)."""
    from .ensemble import roc
    from .report.defences import auc_interval
    from .report.present import interval_text, label

    det = rows[(rows["kind"] == "detection") & (rows["ensemble"] == ensemble)]
    victims = in_order(det["victim"], VICTIMS)
    scores = list(dict.fromkeys(det["score_kind"]))
    fig, axes = plt.subplots(len(victims), len(scores), figsize=(3.6 * len(scores), 3.1 * len(victims)),
                             squeeze=False)
    evaluated = det[det["split"] == "evaluation"]
    order = {"pgd": 0, "adv2": 1, "adaptive": 2}
    inputs = sorted({(a, None if pd.isna(s) else s) for a, s in zip(evaluated["attack"],
                                                                      evaluated["source_interpreter"]) if a != "clean"},
                    key=lambda k: (order.get(k[0], 3), INTERPRETERS.index(k[1]) if k[1] in INTERPRETERS else -1))
    colours = dict(zip(inputs, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for r, v in enumerate(victims):
        for c, k in enumerate(scores):
            ax = axes[r][c]
            g = evaluated[(evaluated["victim"] == v) & (evaluated["score_kind"] == k)]
            clean = g[g["attack"] == "clean"].drop_duplicates("position").set_index("position")["score"]
            threshold = float(det.loc[(det["victim"] == v) & (det["score_kind"] == k), "threshold"].iloc[0])
            fpr_at = float((clean > threshold).mean())
            for n, (attack, source) in enumerate(inputs):
                h = g[(g["attack"] == attack) & ((g["source_interpreter"] == source) if source is not None
                                                  else g["source_interpreter"].isna())]
                ok = h[h["success"].astype(bool)]
                if ok.empty:
                    continue
                curve = roc(clean.to_numpy(), ok["score"].to_numpy())
                positions = sorted(set(clean.index) | set(h["position"]))
                auc = auc_interval(clean.reindex(positions).to_numpy(),
                                   ok.set_index("position")["score"].reindex(positions).to_numpy())
                name = f"ADV2 vs {label(source)}" if attack == "adv2" else label(attack)
                ax.plot(curve["fpr"], curve["tpr"], lw=1.3, color=colours[(attack, source)], label=name,
                        ls="--" if attack == "adaptive" else "-")
                ax.plot([fpr_at], [float(ok["flagged"].astype(bool).mean())], "o", ms=4,
                        color=colours[(attack, source)])
                ax.text(0.98, 0.04 + 0.075 * n, f"AUC {interval_text(auc.estimate, auc.lo, auc.hi, '{:.2f}')}",
                        color=colours[(attack, source)], ha="right", fontsize=7, transform=ax.transAxes)
            ax.plot([0, 1], [0, 1], ls=":", lw=1, color="grey")
            ax.set_xlim(0, 1), ax.set_ylim(0, 1.01)
            ax.set_title(f"{label(v)}, {k} score")
            ax.set_xlabel("false-positive rate (clean)")
            if c == 0:
                ax.set_ylabel("detection rate")
    _legend_once(fig, axes)
    return fig


def aid_bars(rows: pd.DataFrame) -> Figure:
    """AID's effect with 95% intervals (:func:`adv2lib.report.defences.aid_estimates` of the AID
    rows, or that frame itself), drawn with seaborn: ADV2's L1 to the benign map over PGD's under
    the same RTS (panels "L1 / PGD") and its ASR (panels "ASR"), against the original and the
    hardened RTS, per iteration budget; one row of panels per victim."""
    from .report.defences import aid_estimates
    from .report.present import METRIC_LABELS

    est = rows if "metric" in rows.columns else aid_estimates(rows)
    est = est[(est["attack"] == "adv2") & est["metric"].isin(["l1_benign ratio", "asr"])]
    est = est.assign(metric=est["metric"].map(METRIC_LABELS), budget=est["budget"].map(lambda b: f"{b:g}x"))
    fig = interval_plot(est, x="budget", color="rts", col="metric", row="victim", kind="bar", sharey=False,
                        xlabel="stage-2 iterations (x preset)")
    for ax in fig.axes:
        if ax.get_title().startswith(METRIC_LABELS["asr"]):
            ax.set_ylim(0, 1.05)
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
