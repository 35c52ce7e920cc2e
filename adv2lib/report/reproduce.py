"""The Reproduce chapter's tables: this build's run times, the speed-up against a recorded build,
the attack cost stored with every result, the hardware and the versions.

Each function returns ``(table, caption)``: a pandas Styler (or ``None`` when there is nothing to
show) and the caption sentence, so that a notebook cell is one call,
``present.show(*reproduce.build_times(profile, smoke))``.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from .. import paths, record, runner, stats, utils
from .present import TableSpec, label, styled
from .tables import attack_times, build_speedup

__all__ = ["timings", "build_times", "speedup", "attack_cost", "precision", "precision_verdicts", "precision_times",
           "precision_acceptance", "whole_times", "hardware", "versions"]


def timings(profile: str, smoke: bool) -> dict:
    """The runner's record of this scale's last build (per-notebook times, hardware)."""
    path = runner.timings_path(runner.Scale(profile, smoke))
    return json.loads(path.read_text()) if path.is_file() else {"notebooks": [], "hardware": runner.hardware()}


def build_times(profile: str, smoke: bool):
    """Per notebook: wall time, the kernel's and the machine's CPU time, new result batches."""
    t = timings(profile, smoke)
    frame = pd.DataFrame([{"notebook": n["name"], "wall s": n["seconds"], "kernel CPU s": n.get("cpu_seconds"),
                           "machine CPU s": n.get("machine_cpu_seconds"), "new batches": n.get("computed_batches"),
                           "finished (UTC)": n["finished_at"]} for n in t["notebooks"]])
    if frame.empty:
        return None, "No timings recorded yet."
    engine = ", ".join(sorted({str(n["engine"]) for n in t["notebooks"] if n.get("engine")})) or "not recorded"
    table = styled(frame, TableSpec(list(frame.columns), formats={"wall s": "{:.1f}", "kernel CPU s": "{:.1f}",
                                                                 "machine CPU s": "{:.1f}", "new batches": "{:.0f}"}))
    text = (f"**Run time of each notebook** at scale `{t.get('scale')}` (device `{t.get('device')}`), as the runner "
            f"measured it when it last executed it: wall time; the CPU time (user + system, all cores) of the "
            f"notebook's kernel, which leaves out the Ray engine's workers; and the CPU time the whole machine spent "
            f"while the notebook ran (`/proc/stat`), which counts the workers and anything else running. Engine: "
            f"`{engine}`. Total wall time {frame['wall s'].sum() / 60:.1f} min, not counting this chapter and the "
            f"site build. *New batches* counts the batches of attack results the notebook computed; a notebook "
            f"with none only loaded stored results, so its time is not its experiment's cost (the attack-cost "
            f"table below is). These are single measurements, not estimates over images: no interval.")
    return table, text


def speedup(profile: str, smoke: bool):
    """This build beside the recorded one in ``book/baselines/`` (wall-time ratio per notebook)."""
    t = timings(profile, smoke)
    path, baseline = runner.baseline_timings(runner.Scale(profile, smoke))
    frame = build_speedup(t, baseline) if baseline else pd.DataFrame()
    if frame.empty:
        return None, ("No earlier build is recorded at this scale (`book/baselines/`), so there is nothing to "
                      "compare with.")
    formats = {c: "{:.1f}" for c in frame.columns if c.endswith(" s")} | {"speed-up (wall)": "{:.2f}x"}
    hw_then, hw_now = baseline.get("hardware", {}), t.get("hardware", {})
    text = (f"**This build against the build at commit `{baseline.get('commit')}`** (`{path.name}`): wall and "
            f"kernel CPU seconds of each notebook and the wall-time speed-up (compare wall times: the kernel's "
            f"CPU time leaves out the Ray engine's workers). {baseline.get('note', '')} Hardware then: "
            f"{hw_then.get('cpu')}, {hw_then.get('cpu_count')} cores; now: {hw_now.get('cpu')}, "
            f"{hw_now.get('cpu_count')} cores; memory allocator then: "
            f"{hw_then.get('allocator', 'the C library defaults (not recorded)')}, now: "
            f"{hw_now.get('allocator', 'not recorded')}. A notebook that only loaded stored results has no speed-up.")
    return styled(frame, TableSpec(list(frame.columns), formats=formats)), text


def attack_cost(profile: str, smoke: bool, results_dir=None):
    """Attack time per image of each experiment, victim and attack, as stored with the results."""
    from .files import available, load

    tables = {name: load(name, profile, smoke, results_dir).rows for name in available(profile, smoke, results_dir)}
    frame = attack_times(tables)
    if frame.empty:
        return None, "No experiment results at this scale yet."
    formats = {"wall s / image": "{:.2f}", "CPU s / image": "{:.2f}", "wall min (total)": "{:.1f}"}
    text = (f"**Attack time per image** for each experiment, victim and attack, as recorded when the attack ran "
            f"(wall and process-CPU seconds of the batched attack call, divided by the batch size). PGD is the "
            f"shared baseline, run once per victim. Not included: benign maps, target maps, the maps of the PGD "
            f"inputs and the transfer experiment, which only re-interprets stored inputs. Sum of the wall times: "
            f"{frame['wall min (total)'].sum():.1f} min.")
    return styled(frame, TableSpec(list(frame.columns), formats=formats)), text


def _kept_fp32(config: dict) -> str:
    """What a kept reduced-precision run left in float32: image selection always (verify selects the
    record's images); the interpreters of :data:`adv2lib.precision.FP32_INTERPRETERS` since that
    policy exists (runs kept before it name none)."""
    names = config.get("fp32_interpreters") or []
    return ", ".join(["selection", *(label(n) for n in names)])


def _reduced_precision_runs(profile: str, smoke: bool, part: str):
    """The kept verify runs in a precision other than fp32 that hold ``part`` (``"aggregates"`` or
    ``"claims"``): ``(label, precision, what stayed fp32, part as a frame)``."""
    from .appendix import verification_runs

    for run in verification_runs(profile, smoke):
        config = run.get("configuration") or {}
        chosen = config.get("precision", "fp32")
        frame = pd.DataFrame(run.get(part) or [])
        if chosen != "fp32" and not frame.empty:
            yield run.get("label") or run["name"], chosen, _kept_fp32(config), frame


def precision(profile: str, smoke: bool):
    """The kept verify runs in a reduced precision (``verify --precision bf16 --keep NAME``) against
    the fp32 record: per run, experiment, victim, interpreter and attack, the aggregates recomputed,
    how many left the record's 95% interval, and the largest move as a share of the distance from the
    record's estimate to its interval's edge on that side (above 1: outside), with its metric."""
    out = []
    for name, chosen, kept, aggs in _reduced_precision_runs(profile, smoke, "aggregates"):
        # the distance toward the interval's edge on the side the aggregate moved (1: at the edge)
        up = aggs["with_sample"] >= aggs["estimate"]
        room = (aggs["hi"] - aggs["estimate"]).where(up, aggs["estimate"] - aggs["lo"])
        moved = (aggs["with_sample"] - aggs["estimate"]).abs()
        aggs = aggs.assign(move=(moved / room.where(room > 0)).where(moved > 0, 0.0))
        by = [c for c in ("experiment", "victim", "interpreter", "attack") if c in aggs]
        for key, g in aggs.groupby(by, sort=False):
            worst = g.loc[g["move"].idxmax()] if g["move"].notna().any() else None
            out.append({"run": name, "precision": chosen, "in fp32": kept,
                        **dict(zip(by, key if isinstance(key, tuple) else (key,))),
                        "images": int(g["sampled"].max()), "aggregates": len(g),
                        "outside interval": int((~g["inside"].astype(bool)).sum()),
                        "largest move": float("nan") if worst is None else worst["move"],
                        "in": "" if worst is None else str(worst["metric"])})
    if not out:
        return None, ("No verify run in a reduced precision is kept in the record yet "
                      "(`python -m adv2lib verify --precision bf16 --keep NAME`).")
    frame = pd.DataFrame(out)
    text = ("**Reduced precision against the fp32 record.** `python -m adv2lib verify --precision bf16` recomputed "
            "these batches with the victims' passes in bfloat16 (`adv2lib/precision.py`: convolutions and linear "
            "layers under autocast, maps, losses, metrics and the projection in float32) and compared every "
            "published aggregate the batches touch (a metric's mean per victim, interpreter and attack, over the "
            "record's images with the recomputed ones in place) with the fp32 record's 95% interval. *Largest "
            "move*: how far the recomputed aggregate moved from the record's toward that interval's edge on its "
            "side (1: at the edge; above 1: outside; an interval of zero width counts any move as outside), and "
            "its metric. *In fp32*: what the run kept in float32 (`adv2lib.precision.task_precision`: image "
            "selection, and since MASK was measured to move verdicts, every task that runs MASK). One run each; "
            "the images are the record's.")
    return styled(frame, TableSpec(list(frame.columns), formats={"largest move": "{:.2f}"})), text


def precision_verdicts(profile: str, smoke: bool):
    """Per kept reduced-precision run and claim of an experiment it recomputed in full: the claim's
    tests judged again from the recomputed rows (``verify.claim_moves``), how many keep the
    record's verdict, and each that does not, with both estimates."""
    from .present import interval_text

    out = []
    for name, _, kept, tests in _reduced_precision_runs(profile, smoke, "claims"):
        for claim, g in tests.groupby("claim", sort=False):
            moved = g[~g["same"].astype(bool)]
            out.append({"run": name, "in fp32": kept, "claim": claim, "tests": len(g),
                        "same verdict": int(g["same"].astype(bool).sum()),
                        "changed": "; ".join(
                            f"{label(r['victim'])} {label(r.get('interpreter'))}, {r['statistic']}: "
                            f"{interval_text(r['estimate'], r['lo'], r['hi'])} {r['verdict']} → "
                            f"{interval_text(r['estimate_new'], r['lo_new'], r['hi_new'])} {r['verdict_new']}"
                            for _, r in moved.iterrows()) or "none"})
    if not out:
        return None, "No experiment was recomputed in full in a reduced precision yet, so no verdict is judged again."
    frame = pd.DataFrame(out)
    text = ("**The verdicts in a reduced precision.** Each claim test of an experiment the run recomputed in full, "
            "judged again from the recomputed rows alone (same rule, bar and bootstrap), beside the fp32 "
            "record's verdict: how many tests keep it, and each that does not with both estimates and intervals.")
    return styled(frame, TableSpec(list(frame.columns))), text


#: An aggregate outside its fp32 interval by at most this share of its value (of 1 for values under 1)
#: counts as no move: float rounding of the projection at the L-inf budget, where the interval has zero
#: width or ends at the budget, not a change of the number (our tolerance; the table's text gives the
#: range of tolerances that leave its counts unchanged).
ROUNDING_TOLERANCE = 1e-6


def _policy_runs(runs: list[dict]) -> dict:
    """Per part of a kept run (``aggregates``, ``claims``) and per experiment, of the kept verify ``runs``
    the reduced-precision one under the current fp32 policy (:data:`adv2lib.precision.FP32_INTERPRETERS`)
    that recomputed most of it: ``{part: {experiment: (run, frame)}}``."""
    from ..precision import FP32_INTERPRETERS

    return _largest_runs(runs, lambda config: config.get("precision", "fp32") != "fp32"
                         and set(config.get("fp32_interpreters") or []) == FP32_INTERPRETERS)


def _control_runs(runs: list[dict]) -> dict:
    """The control of the acceptance test: per part and experiment, the kept fp32 run that recomputed
    the experiment whole (``verify --all --precision fp32 --keep NAME``), as :func:`_policy_runs`."""
    return _largest_runs(runs, lambda config: config.get("precision", "fp32") == "fp32"
                         and config.get("minutes", 0) is None)


def _largest_runs(runs: list[dict], wanted) -> dict:
    """Per part (``aggregates``, ``claims``) and experiment, of the kept verify ``runs`` whose configuration
    ``wanted`` accepts, the one that recomputed most of the experiment: ``{part: {experiment: (run, frame)}}``;
    a frame's ``whole``: whether its run recomputed every batch (``verify --all``; for an experiment a
    sample recomputes on its first batch only, :data:`adv2lib.verify.FIRST_BATCH_ONLY`, only where the
    run recomputed it as a whole run: :func:`_whole`). A run that recomputed the experiment whole comes
    before one that did not."""
    chosen = {"aggregates": {}, "claims": {}}
    for run in runs:
        config = run.get("configuration") or {}
        if not wanted(config):
            continue
        for part in chosen:
            frame = pd.DataFrame(run.get(part) or [])
            for experiment, g in frame.groupby("experiment", sort=False) if not frame.empty else []:
                g = g.assign(whole=_whole(config, experiment))
                before = chosen[part].get(experiment)
                if before is None or (g["whole"].all(), len(g)) > (before[1]["whole"].all(), len(before[1])):
                    chosen[part][experiment] = (run.get("label") or run["name"], g)
    return chosen


def _whole(config: dict, experiment: str) -> bool:
    """Whether a kept verify run of ``config`` recomputed ``experiment`` whole: ``verify --all``, and for
    an experiment a sample recomputes on its first batch only (:data:`adv2lib.verify.FIRST_BATCH_ONLY`),
    as a whole run (its ``whole_runs``; runs kept before verify had them recomputed the first batch)."""
    from ..verify import FIRST_BATCH_ONLY

    return config.get("minutes") is None and (experiment not in FIRST_BATCH_ONLY
                                              or experiment in (config.get("whole_runs") or []))


def _judged(chosen: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The aggregates and claim tests of :func:`_largest_runs`'s runs, judged: ``outside`` (outside the
    fp32 record's 95% interval by more than float rounding), ``rounding`` (past a bound by at most
    :data:`ROUNDING_TOLERANCE` of its value), ``past`` (how far past the nearer bound, relative to the
    value; NaN inside), each with its ``run`` and ``interpreter`` (a PGD row: the interpreter whose maps
    it carries); and the claim tests with ``moved`` (verdict changed)."""
    aggs, claims = chosen["aggregates"], chosen["claims"]
    frame = pd.concat([g.assign(run=name) for name, g in aggs.values()], ignore_index=True) if aggs else \
        pd.DataFrame(columns=["experiment", "interpreter", "inside", "lo", "hi", "estimate", "with_sample", "run",
                              "whole"])
    def named(column):      # "" (a row of every interpreter, as the ensemble's) read back as missing
        return frame.get(column, pd.Series(index=frame.index, dtype=object)).replace("", None)

    frame["interpreter"] = named("interpreter").fillna(named("source_interpreter")).fillna("(all: the ensemble)")
    outside = ~frame["inside"].astype(bool)
    past = (np.maximum(frame["lo"] - frame["with_sample"], frame["with_sample"] - frame["hi"])
            / frame["estimate"].abs().clip(lower=1)).where(outside)     # how far past the nearer bound, relative
    rounding = outside & (past <= ROUNDING_TOLERANCE)
    frame = frame.assign(outside=outside & ~rounding, rounding=rounding, past=past)
    tests = pd.concat([g for _, g in claims.values()], ignore_index=True) if claims else pd.DataFrame(
        columns=["experiment", "interpreter", "same"])
    return frame, tests.assign(moved=~tests["same"].astype(bool))


def _attack_shares(profile: str, smoke: bool):
    """The record's attack seconds per experiment (its manifest's ``attack_seconds``; None: no attack of
    its own), a function giving an experiment's share of their sum as table text, and the sum."""
    recorded = {k: v.get("attack_seconds") for k, v in
                (record.read_manifest(record.scale_dir(profile, smoke)).get("experiments") or {}).items()}
    total = sum(v for v in recorded.values() if v)

    def share(experiment: str) -> str:
        return f"{recorded[experiment] / total:.1%}" if recorded.get(experiment) and total else "no attack of its own"

    return recorded, share, total


#: How the tables mark an experiment a kept run recomputed on its first batch only (:func:`_whole`).
FIRST_BATCH = "first batch only"

#: The acceptance tables' column of the control: the same test of fp32 recomputed whole.
CONTROL = "fp32 control: outside / aggregates, verdicts moved"


def _control_cell(aggs: pd.DataFrame, tests: pd.DataFrame) -> str:
    """One cell of :data:`CONTROL`: ``"outside / aggregates, moved of tests"``, or why there is none."""
    if aggs.empty and tests.empty:
        return "not recomputed whole in fp32"
    return f"{int(aggs['outside'].sum())} / {len(aggs)}, {int(tests['moved'].sum())} of {len(tests)}"


def precision_acceptance(profile: str, smoke: bool, by: str = "interpreter"):
    """The acceptance test of a reduced precision (issue 25), ``by`` interpreter or experiment: over every
    experiment a kept run under the current fp32 policy recomputed, the aggregates outside the fp32
    record's 95% interval (those past a bound by at most :data:`ROUNDING_TOLERANCE` counted apart),
    the claim tests whose verdict moved, and whether the interpreter (the experiment, when it was
    recomputed whole) passes: none outside, none moved. Beside it the control (:data:`CONTROL`): the
    same test of fp32 recomputed whole, where a kept run did. Per experiment also its share of the
    record's attack time, what adopting the precision there could save at most."""
    from ..verify import FIRST_BATCH_ONLY
    from .appendix import verification_runs

    runs = verification_runs(profile, smoke)        # read once: the tested precision's runs and the control's
    chosen = _policy_runs(runs)
    if not chosen["aggregates"]:
        return None, "No kept reduced-precision run under the current policy yet."
    frame, tests = _judged(chosen)
    control, control_tests = _judged(_control_runs(runs))
    rounding, past = frame["rounding"], frame["past"]
    outside = frame["outside"] | rounding

    def rows(by):
        out = []
        for key, g in frame.groupby(by, sort=False):
            t = tests[tests[by] == key] if by in tests else tests.iloc[0:0]
            bad = int(g["outside"].sum()) + int(t["moved"].sum())
            whole = bool(g["whole"].all()) or by == "interpreter"      # an experiment passes only when tested whole
            out.append({by: (label(key) or key) if by == "interpreter" else key,
                        **({"experiments": ", ".join(sorted(g["experiment"].unique()))} if by == "interpreter"
                           else {"recomputed": "whole" if whole else FIRST_BATCH if key in FIRST_BATCH_ONLY
                                 else "a sample of batches", "run": g["run"].iloc[0]}),
                        "aggregates": len(g), "outside interval": int(g["outside"].sum()),
                        "past a bound by rounding only": int(g["rounding"].sum()),
                        "verdict tests": len(t), "verdicts moved": int(t["moved"].sum()),
                        "passes": "no" if bad else ("yes" if whole else "not tested whole (nothing moved)"),
                        CONTROL: _control_cell(control[control[by] == key],
                                               control_tests[control_tests[by] == key] if by in control_tests
                                               else control_tests.iloc[0:0])})
        return pd.DataFrame(out)

    per_interpreter, per_experiment = rows("interpreter"), rows("experiment")
    # what each experiment costs: its attacks' summed seconds in the record, as a share of every experiment's
    _, share, _ = _attack_shares(profile, smoke)
    per_experiment["share of the record's attack time"] = [share(e) for e in per_experiment["experiment"]]
    # the control beside the tested precision, over the experiments both cover (the control recomputed whole)
    both = set(control["experiment"]) & set(frame["experiment"])
    same, same_tests = frame[frame["experiment"].isin(both)], tests[tests["experiment"].isin(both)]
    ctrl, ctrl_tests = control[control["experiment"].isin(both)], control_tests[control_tests["experiment"].isin(both)]
    only = sorted(set(control["experiment"]) - both)
    control_text = (
        f" *{CONTROL}*: the same test of a kept run that recomputed the experiment whole in fp32 "
        "(`python -m adv2lib verify --all --precision fp32`, the record's code on the CPU its run names): how "
        "often the test rejects fp32 itself. Over the experiments both cover "
        f"({', '.join(sorted(both))}), fp32 left {int(ctrl['outside'].sum())} of "
        f"{len(ctrl)} aggregates outside ({int(ctrl['rounding'].sum())} past a bound by rounding only) and "
        f"moved {int(ctrl_tests['moved'].sum())} of {len(ctrl_tests)} verdicts; the reduced precision, "
        f"{int(same['outside'].sum())} of {len(same)} outside and {int(same_tests['moved'].sum())} of "
        f"{len(same_tests)} moved."
        + ("" if not only else f" Recomputed whole in fp32 only ({', '.join(only)}): "
           f"{int(control['outside'].sum()) - int(ctrl['outside'].sum())} of {len(control) - len(ctrl)} "
           "aggregates outside.") if len(control) else
        f" *{CONTROL}*: no experiment is recomputed whole in fp32 yet, so how often the test rejects fp32 itself "
        "is not measured.")
    passing = per_interpreter.loc[per_interpreter["passes"] == "yes", "interpreter"].tolist()
    whole = per_experiment.loc[per_experiment["passes"] == "yes"]
    if by == "interpreter":
        text = ("**The acceptance test, interpreter by interpreter.** Every aggregate of every experiment a kept "
                "run recomputed under the current policy (image selection and MASK's tasks in fp32), against the "
                "fp32 record's 95% interval, and every claim test of an experiment recomputed in full, judged "
                "again. An interpreter passes when nothing of its moved out: no aggregate outside its interval (one "
                f"past a bound by at most {ROUNDING_TOLERANCE:g} of its value is float rounding at the L-inf budget, "
                "counted apart: our tolerance"
                + (f"; the counts are the same for any tolerance of at least {past[rounding].max():.1e} and "
                   f"under {past[outside & ~rounding].min():.1e}" if rounding.any() and (outside & ~rounding).any() else "")
                + ") and no verdict changed. PGD rows count under the interpreter whose maps they carry. "
                + (f"Passing in every experiment: {', '.join(passing)}." if passing else
                   "No interpreter passes in every experiment.") + control_text)
        return styled(per_interpreter, TableSpec(list(per_interpreter.columns))), text
    text = ("**The acceptance test, experiment by experiment.** The same counts per experiment; an experiment "
            "passes only when a kept run recomputed it whole. *Share of the record's attack time*: its attacks' "
            "summed seconds in the record over every experiment's, the most that adopting bfloat16 for it alone "
            "could act on. "
            + ("Experiments that pass as a whole: " + ", ".join(
                f"{e} ({share if share.endswith('%') else 'none'} of the record's attack time)"
                for e, share in zip(whole["experiment"], whole["share of the record's attack time"])) + "."
               if len(whole) else "No experiment passes as a whole.") + control_text)
    return styled(per_experiment, TableSpec(list(per_experiment.columns))), text


def _unit_seconds(run: dict) -> pd.DataFrame:
    """A kept verify run's recomputed units with their seconds (``experiment``, ``unit``, ``seconds``)."""
    frame = pd.DataFrame(run.get("table") or [])
    if frame.empty:
        return pd.DataFrame(columns=["experiment", "unit", "seconds"])
    return frame.loc[~frame["unit"].astype(str).str.startswith("not sampled"), ["experiment", "unit", "seconds"]]


#: The fewest batches a speed-up's bootstrap interval is shown for (a bootstrap over 2 to 4 batches
#: draws so few distinct resamples that its percentiles mean little; our bar).
INTERVAL_BATCHES = 5


def precision_times(profile: str, smoke: bool):
    """Per experiment, the seconds of the same sampled batches recomputed in fp32 and in a reduced
    precision by two kept verify runs of one sample (same seed, minutes, engine and threads), with
    the speed-up (fp32 seconds over reduced-precision seconds, a paired bootstrap interval over
    the batches). Whole experiments: :func:`whole_times`."""
    from .appendix import verification_runs

    runs = verification_runs(profile, smoke)

    def sample_of(run):
        c = run.get("configuration") or {}
        return (c.get("seed"), c.get("minutes"), c.get("engine"), c.get("threads"), c.get("device"))

    pairs = [(a, b) for a in runs for b in runs
             if (a.get("configuration") or {}).get("precision", "fp32") == "fp32"
             and (b.get("configuration") or {}).get("precision", "fp32") != "fp32"
             and (a.get("configuration") or {}).get("minutes") is not None and sample_of(a) == sample_of(b)]
    # the last pair by file name, preferring a reduced run under the fp32 policy (runs kept before it name none)
    pairs.sort(key=lambda pair: bool((pair[1].get("configuration") or {}).get("fp32_interpreters")))
    out = []
    for fp32_run, reduced in pairs[-1:]:
        joined = _unit_seconds(fp32_run).merge(_unit_seconds(reduced), on=["experiment", "unit"],
                                               suffixes=(" fp32", " reduced"))
        chosen = reduced["configuration"]["precision"]
        for experiment, g in [*joined.groupby("experiment", sort=False), ("all sampled", joined)]:
            ratio = stats.paired(g["seconds fp32"], g["seconds reduced"])
            out.append({"experiment": experiment, "batches": len(g), "fp32 s": g["seconds fp32"].sum(),
                        f"{chosen} s": g["seconds reduced"].sum(),
                        "speed-up": ratio.format("{:.2f}") if len(g) >= INTERVAL_BATCHES
                        else f"{ratio.estimate:.2f} (n = {len(g)}, no interval)",
                        "in fp32": _kept_fp32(reduced["configuration"]),
                        "run": reduced.get("label") or reduced["name"]})
    if not out:
        return None, "No pair of fp32 and reduced-precision verify runs of one sample is kept in the record yet."
    frame = pd.DataFrame(out)
    seconds = [c for c in frame.columns if c.endswith(" s")]
    text = ("**Time in each precision.** The same batches (one per experiment that fits the sample's minutes) "
            "recomputed by `python -m adv2lib verify --minutes M --seed S`, once in fp32 and once with "
            "`--precision`, one after the other on one machine with nothing else running (serial engine, the "
            "threads of the run's configuration); a batch's seconds include what it needs that no earlier "
            "batch computed (image selection, PGD, benign maps). *Speed-up*: fp32 seconds over the reduced "
            f"precision's, with a 95% paired bootstrap interval over the batches (none under {INTERVAL_BATCHES} "
            "batches: too few to resample; our bar). Whole experiments: the next table.")
    return styled(frame, TableSpec(list(frame.columns), formats={c: "{:.0f}" for c in seconds})), text


def whole_times(profile: str, smoke: bool):
    """What computing the book costs, experiment by experiment: the seconds of the kept verify runs
    that recomputed an experiment whole (``verify --all --only ... --keep NAME``), in each precision,
    beside the record's own attack seconds; and the sum over the experiments measured so far, with
    those not yet measured named (the full book's time is the sum once every experiment has one).
    Of several runs of an experiment in one precision, the last by file name, one under the current
    fp32 policy (:data:`adv2lib.precision.FP32_INTERPRETERS`) before one kept before it. A run that
    recomputed an experiment reading another's results (:func:`adv2lib.verify.requires`) without that
    other one also computed the other's batches within the experiment's units: not its own cost, so
    left out for it and named. An experiment a run recomputed on its first batch only (:func:`_whole`:
    runs kept before ``verify --all`` recomputed transfer and the ensemble as whole runs) shows that
    batch's seconds, marked so and left out of the sums (a part of the experiment's cost, not the
    whole); a run that recomputed it whole comes before such a run."""
    from ..precision import FP32_INTERPRETERS
    from ..verify import FIRST_BATCH_ONLY, NEVER_SAMPLED, _book_order, requires
    from .appendix import verification_runs

    recorded, share, total = _attack_shares(profile, smoke)
    # {(experiment, precision): (under the current fp32 policy, whole, seconds, run)}, {run: its facts}
    measured, runs, charged, repeated = {}, {}, {}, {}
    for run in verification_runs(profile, smoke):
        config = run.get("configuration") or {}
        if config.get("minutes", 0) is not None:
            continue
        name, chosen = run.get("label") or run["name"], config.get("precision", "fp32")
        policy = chosen == "fp32" or set(config.get("fp32_interpreters") or []) == FP32_INTERPRETERS
        units = _unit_seconds(run)
        computed = set(units["experiment"])
        for experiment, g in units.groupby("experiment", sort=False):
            missing = [other for other in requires(experiment) if other not in computed]
            if missing:                                                     # its units computed the others'
                charged.setdefault(name, []).append(f"{experiment} without {' and '.join(missing)}")
                continue
            # the last kept run by file name, a run under the current policy before one kept before it, and
            # a whole run before the first batch alone
            whole = _whole(config, experiment)
            if policy and whole:
                repeated.setdefault((experiment, chosen), []).append(float(g["seconds"].sum()))
            if (policy, whole) >= measured.get((experiment, chosen), (False, False))[:2]:
                measured[experiment, chosen] = (policy, whole, float(g["seconds"].sum()), name)
        wall, cpu = run.get("seconds"), run.get("cpu_seconds")
        runs[name] = ", ".join([
            chosen, config.get("cpu") or "CPU not recorded",
            *([f"{chosen} in hardware: " + {True: "yes", False: "no, emulated"}.get(config.get("native"),
                                                                                   "not recorded")]
              if chosen != "fp32" else []),
            "wall not recorded" if wall is None else f"{wall:,.0f} s wall",
            "CPU time not recorded" if cpu is None else f"{cpu:,.0f} s CPU"])
    if not measured:
        return None, "No kept verify run recomputed an experiment whole yet (`python -m adv2lib verify --all`)."
    precisions = sorted({p for _, p in measured}, key=lambda p: (p != "fp32", p))
    shown = {name for *_, name in measured.values()}
    out, parts = [], {chosen: set() for chosen in precisions}       # parts: the first batch only
    for experiment in _book_order(recorded):
        row = {"experiment": experiment, "record attack s": recorded.get(experiment) or float("nan"),
               "share of the record's attack time": share(experiment)}
        for chosen in precisions:
            _, whole, seconds, name = measured.get((experiment, chosen), (None, True, float("nan"), None))
            row[f"{chosen} s"] = seconds
            if name and not whole:
                name += f" ({FIRST_BATCH})"
                parts[chosen].add(experiment)
            row[f"{chosen} run"] = name or ("not recomputed whole yet" + (" (a sample never recomputes it; "
                                                                          "`verify --all` does, as a whole run)"
                                                                          if experiment in NEVER_SAMPLED else ""))
        out.append(row)
    frame = pd.DataFrame(out)
    sums = []
    for chosen in precisions:
        timed = frame[f"{chosen} s"].notna()
        done = timed & ~frame["experiment"].isin(parts[chosen])
        share = frame.loc[done, "record attack s"].sum() / total if total else float("nan")
        pending = [e + (f" ({FIRST_BATCH})" if t else "") for e, t in zip(frame.loc[~done, "experiment"], timed[~done])]
        sums.append(f"in {chosen}, {int(done.sum())} of {len(frame)} experiments took "
                    f"{frame.loc[done, f'{chosen} s'].sum():,.0f} s ({frame.loc[done, f'{chosen} s'].sum() / 3600:.2f} h; "
                    f"{share:.0%} of the record's attack time); not yet: " + (", ".join(pending) or "none"))
    text = ("**What the book costs to compute, experiment by experiment.** The seconds of a kept "
            "`python -m adv2lib verify --all --only ...` run that recomputed the experiment whole (serial "
            "engine, the threads of its configuration), one run each, not an interval; work an experiment "
            "shares with another (transfer and the cross-model study read the main experiment's attacks, the "
            "ensemble transfer's maps, the ensemble's designs the ensemble's, the AID premise the AID "
            "experiment's) counts "
            "where it ran first in its run, as in a book build. " + " and ".join(FIRST_BATCH_ONLY).capitalize()
            + " gather their inputs from their whole run by order: a sample recomputes their first batch only, "
            "and `verify --all` recomputes them as whole runs (as it does the studies a sample never recomputes: "
            + ", ".join(NEVER_SAMPLED) + "); a run kept before it did recomputed their first batch only, and its "
            "seconds, marked so, are a part of the experiment's cost, which the sums leave out. Beside them the record's own attack seconds, "
            "measured when the record was computed, on other machines and engines: not comparable with these. "
            "So far, " + "; ".join(sums) + ". The full book's time in a precision is the sum once every "
            "experiment has one, plus rendering the chapters from the results (the build table above). The runs, "
            "with their CPU and their wall and CPU seconds: "
            + "; ".join(f"{name} ({facts})" for name, facts in runs.items() if name in shown) + "."
            + ("" if not (again := {k: v for k, v in repeated.items() if len(v) > 1}) else
               " Recomputed whole more than once (how far one run's seconds may be from another's, machine to "
               "machine and day to day; the table shows the last): " + "; ".join(
                   f"{experiment} in {chosen}: " + ", ".join(f"{v:,.0f} s" for v in seconds)
                   for (experiment, chosen), seconds in again.items()) + ".")
            + ("" if not charged else " Left out: " + "; ".join(f"{name} ({', '.join(which)})"
                                                              for name, which in charged.items())
               + ": an experiment recomputed without the one whose results it reads recomputed that one's "
                 "batches too, within its own units, so those seconds are not its own cost."))
    formats = {c: "{:,.0f}" for c in frame.columns if c.endswith(" s")}
    return styled(frame, TableSpec(list(frame.columns), formats=formats)), text


def hardware(profile: str, smoke: bool):
    """The machine the timings were measured on."""
    hw = timings(profile, smoke).get("hardware", {})
    frame = pd.DataFrame({"hardware": list(hw.keys()), "value": [str(v) for v in hw.values()]})
    return styled(frame, TableSpec(["hardware", "value"])), ""


def versions():
    """Key packages: pinned (``requirements-lock.txt``) and this build's."""
    lock = paths.root() / "requirements-lock.txt"
    pins = dict(line.split("==", 1) for line in lock.read_text().splitlines() if "==" in line and not line.startswith("#"))
    key = ["torch", "torchvision", "numpy", "scipy", "pandas", "matplotlib", "seaborn", "captum", "papermill",
           "jupyter-book", "sphinx", "myst-nb"]
    frame = pd.DataFrame([{"package": k, "pinned (requirements-lock.txt)": pins.get(k, pins.get(k.capitalize(), "–")),
                           "this build": utils.versions().get(k, "")} for k in key])
    return styled(frame, TableSpec(list(frame.columns))), ("Key packages: the pinned versions the published build "
                                                           "used, and the versions this build ran with (for the "
                                                           "library's own dependencies). The full list is in "
                                                           "`requirements-lock.txt`.")
