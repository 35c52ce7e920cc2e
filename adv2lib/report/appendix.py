"""The Artifact Appendix chapter, in the format of USENIX Security's artifact evaluation
(the Artifact Appendix template: Abstract; Description & Requirements; Set-up; Evaluation
workflow with major claims C1..Cn and experiments E1..En; Notes on Reusability; Version;
https://secartifacts.github.io/usenixsec2020/appendix), generated from the chapter plan
(:mod:`adv2lib.chapters`), the claims (:data:`adv2lib.paper_numbers.CLAIMS`, :mod:`.claims`)
and the record (:mod:`adv2lib.record`): its manifest, tables and verification runs. Nothing in
it is typed by hand but the fixed prose of the template.

Each function returns ``(table, caption)`` (a pandas Styler, or None) or Markdown text, so that
a notebook cell is one call.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .. import chapters, paths, record
from .. import paper_numbers as paper
from .present import TableSpec, styled

__all__ = ["manifest", "claim_ids", "experiment_ids", "claims_table", "experiments_table", "requirements_table",
           "verification_runs", "tolerance_table", "basic_test", "version_table", "COMMANDS"]

#: The command that computes each experiment of the book on its own (both victims, the book's sizes).
COMMANDS = {ch.experiment: (f"python -m adv2lib experiment {ch.experiment} "
                            f"--victim {'resnet' if ch.one_victim else 'all'} --engine ray")
            for ch in chapters.PLAN if ch.experiment}


def manifest(profile: str = "embedded", smoke: bool = False) -> dict:
    return record.read_manifest(record.scale_dir(profile, smoke))


def experiment_ids() -> dict[str, str]:
    """``{experiment: "E1", ...}`` in book order."""
    return {ch.experiment: f"E{i}" for i, ch in enumerate((c for c in chapters.PLAN if c.experiment), 1)}


def claim_ids() -> dict[str, str]:
    """``{claim: "C1", ...}``: the paper's claims that an experiment here judges, in the paper's order."""
    from .claims import CLAIM_RULES

    tested = [r.claim for r in CLAIM_RULES if r.experiment]
    return {c: f"C{i}" for i, c in enumerate(tested, 1)}


def _verdicts(profile: str, smoke: bool, results_dir=None) -> pd.DataFrame:
    from . import claims, comparison

    tables = comparison.load_all(profile, smoke, results_dir)
    return claims.verdicts(comparison.rows(tables))


def claims_table(profile: str = "embedded", smoke: bool = False, results_dir=None):
    """C1..Cn: the claim in the paper's words, where the paper makes it, the experiment that
    judges it and the verdict the record gives (with the fewest images behind a test)."""
    from .claims import CLAIM_RULES

    ids, eids = claim_ids(), experiment_ids()
    claims = {c.id: c for c in paper.CLAIMS}
    verdicts = _verdicts(profile, smoke, results_dir).set_index("claim")
    rows = []
    for rule in CLAIM_RULES:
        if rule.claim not in ids:
            continue
        c = claims[rule.claim]
        v = verdicts.loc[rule.claim] if rule.claim in verdicts.index else None
        rows.append({"claim": ids[rule.claim], "statement (paper)": c.text, "where in the paper": c.item,
                     "experiment": ", ".join(f"{eids[e]} ({e})" for e in (rule.experiment, *rule.also)),
                     "verdict of the record": "not tested" if v is None else v["verdict"],
                     "n": None if v is None else v.get("n")})
    frame = pd.DataFrame(rows)
    untested = [f"{claims[r.claim].item} ({r.untested.rstrip('.')})" for r in CLAIM_RULES if r.claim not in ids]
    text = ("**Major claims.** Each claim of the paper that an experiment of this artifact judges, the "
            "experiment, and the verdict the record gives (holds / does not hold / partly / inconclusive at n; "
            "n: the fewest images behind one of its tests; criteria, bars and intervals in "
            "{doc}`paper_vs_ours`). Not judged here: " + "; ".join(untested) + ".")
    return styled(frame, TableSpec(list(frame.columns), formats={"n": "{:.0f}"})), text


def _store_bytes(experiment: str, results_dir=None) -> int | None:
    root = Path(results_dir) if results_dir else paths.results_dir()
    folder = root / experiment
    return record.size(folder) if folder.is_dir() else None


def experiments_table(profile: str = "embedded", smoke: bool = False, results_dir=None):
    """E1..En: the chapter, the command, the images, the compute time measured on the record's
    machine (the attacks' summed wall and CPU time, from the per-image times stored with every
    row), the notebook's wall time when it computed, the disk it takes (the record's files and,
    where this machine has it, the results store's folder), the claims it judges and their verdicts."""
    from .claims import CLAIM_RULES

    m = manifest(profile, smoke)
    ids, eids = claim_ids(), experiment_ids()
    verdicts = _verdicts(profile, smoke, results_dir).set_index("claim")
    rows = []
    for ch in chapters.PLAN:
        if not ch.experiment:
            continue
        e = (m.get("experiments") or {}).get(ch.experiment, {})
        nb = (m.get("notebooks") or {}).get(ch.notebook, {})
        judged = [r.claim for r in CLAIM_RULES if r.experiment == ch.experiment and r.claim in ids]
        expected = "; ".join(f"{ids[c]} {verdicts.loc[c, 'verdict']}" for c in judged if c in verdicts.index)
        n = e.get("n_images") or {}
        store = _store_bytes(ch.experiment, results_dir)
        rows.append({
            "experiment": eids[ch.experiment], "chapter": ch.notebook, "command": COMMANDS[ch.experiment],
            "images per victim": ", ".join(f"{v} {k}" for v, k in n.items()) if n else "",
            "attack wall h": None if e.get("attack_seconds") is None else e["attack_seconds"] / 3600,
            "attack CPU h": None if e.get("attack_cpu_seconds") is None else e["attack_cpu_seconds"] / 3600,
            "notebook wall min": None if not nb.get("computed_batches") else nb["seconds"] / 60,
            "record MB": sum(f["bytes"] for f in (e.get("files") or {}).values()) / 1e6 if e else None,
            "store MB": None if store is None else store / 1e6,
            "expected result": expected or "(a measurement the claims' chapters use)"})
    frame = pd.DataFrame(rows)
    machine = m.get("machine") or {}
    text = (f"**Experiments.** The command that computes each one alone (`make book` runs them all through the "
            f"notebooks), its size, and its cost on the record's machine ({machine.get('cpu', 'not recorded')}, "
            f"{machine.get('cpu_count', '?')} CPUs): the attacks' wall and CPU time summed over every stored row "
            f"(per-image times measured when the attack ran, so they stay true when a build only loads results; "
            f"two Ray workers run two attacks at once, so the elapsed time is about half the summed wall time), "
            f"and the notebook's wall time when it last computed (empty: it last only loaded stored results). "
            f"Disk: the experiment's files in the record, and its folder of the results store where this "
            f"machine has one. Expected result: the verdicts of the claims it judges (each with its 95% intervals "
            f"in {{doc}}`paper_vs_ours`); human time is running the command. Single measurements: no interval.")
    formats = {c: "{:.2f}" for c in ("attack wall h", "attack CPU h", "record MB", "store MB")} | \
        {"notebook wall min": "{:.1f}"}
    return styled(frame, TableSpec(list(frame.columns), formats=formats)), text


def requirements_table(profile: str = "embedded", smoke: bool = False):
    """Hardware, software, data and weights: the record's machine and inputs, the locked versions."""
    m = manifest(profile, smoke)
    machine = m.get("machine") or {}
    lock = {}
    lock_file = paths.root() / "requirements-lock.txt"
    if lock_file.is_file():
        for line in lock_file.read_text().splitlines():
            name, _, version = line.partition("==")
            lock[name.strip().lower()] = version.strip()
    inputs = m.get("inputs") or {}
    weights = sorted((paths.weights_dir() / profile).glob("*.pt")) if (paths.weights_dir() / profile).is_dir() else []
    rows = [
        ("hardware", "the record's machine",
         f"{machine.get('cpu', 'not recorded')}, {machine.get('cpu_count', '?')} CPUs, "
         f"{machine.get('memory_gib', '?')} GiB, GPU: {machine.get('cuda') or 'none'}"),
        ("hardware", "minimum", "any x86-64 or ARM CPU with 4 GiB of memory (the embedded profile); a GPU for "
                                "the imagenet profile"),
        ("software", "locked versions (requirements-lock.txt)",
         ", ".join(f"{k} {lock[k]}" for k in ("torch", "torchvision", "numpy", "scipy", "pandas", "jupyter-book",
                                               "papermill", "ray") if k in lock)),
        ("software", "system packages (Debian)", "dataset-fashion-mnist (the data), libtcmalloc-minimal4 "
                                                 "(optional allocator), chromium (the browser tests)"),
        ("benchmark", "data", "Fashion-MNIST test set: " + ", ".join(
            f"{name} (sha256 {h})" for name, h in (inputs.get("data") or {}).items())),
        ("benchmark", "weights (committed, weights/" + profile + ")",
         ", ".join(f"{w.name} ({w.stat().st_size / 1e6:.1f} MB)" for w in weights) +
         f"; hash of the folder {inputs.get('weights', '?')}"),
    ]
    frame = pd.DataFrame(rows, columns=["kind", "what", "value"])
    text = ("**Requirements.** What the record was built with and what the artifact needs. The data and the "
            "weights are identified by content hash; the experiments' keys include them, so a different file "
            "is never served the record's results.")
    return styled(frame, TableSpec(list(frame.columns))), text


def verification_runs(profile: str = "embedded", smoke: bool = False) -> list[dict]:
    """The verify runs kept in the record (``record/<scale>/verify/*.json``), by file name."""
    folder = record.scale_dir(profile, smoke) / "verify"
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        data = json.loads(path.read_text())
        out.append({"name": path.stem, **data})
    return out


def tolerance_table(profile: str = "embedded", smoke: bool = False):
    """Per verification run of the record (one configuration each: threads, engine, allocator,
    device) and batch recomputed: the share of values identical to the last bit, the largest
    difference and the aggregates outside the record's 95% interval, the record's seconds for the
    batch and the recomputation's."""
    rows = []
    for run in verification_runs(profile, smoke):
        config = run.get("configuration", {})
        label = run.get("label") or run["name"]
        for t in run.get("table", []):
            rows.append({"configuration": label, "experiment": t["experiment"], "batch": t.get("unit", ""),
                         "images": t["images"], "identical values": t["identical values"],
                         "largest difference": t["largest difference"], "aggregates": t["aggregates"],
                         "outside interval": t["outside interval"], "record seconds": t.get("record seconds"),
                         "seconds": t["seconds"]})
    if not rows:
        return None, "No verification run is kept in the record yet (`python -m adv2lib verify --keep NAME`)."
    frame = pd.DataFrame(rows)
    text = ("**What stays bit-identical, per configuration.** In each configuration `python -m adv2lib verify` "
            "recomputed the same seeded sample of the record's batches (each with the record's images, targets "
            "and batch boundaries) and compared them with the record: the share of the recomputed values (every "
            "metric of every row) identical to the last bit, the largest difference and where it is, and how many "
            "of the aggregates the batch touches fall outside the record's 95% interval when the batch's values "
            "replace the record's. A row \"not sampled\" names an experiment none of whose batches fitted the "
            "run's minutes. Seconds: one run each, not an interval.")
    return styled(frame, TableSpec(list(frame.columns), formats={"identical values": "{:.4f}", "seconds": "{:.0f}",
                                                                  "record seconds": "{:.0f}"})), text


def basic_test(profile: str = "embedded", smoke: bool = False) -> str:
    """Markdown: the basic test (verify on the main experiment) with its output and time, as kept."""
    runs = {r["name"]: r for r in verification_runs(profile, smoke)}
    basic = runs.get("basic")
    head = ("```bash\nmake verify VERIFY_ARGS=\"--only main\" VERIFY_MINUTES=2\n```\n\n"
            "recomputes the batches of the main experiment that fit two minutes (by the record's own times), "
            "each with the record's images and batch boundaries, and compares them with the record.")
    if not basic:
        return head + " No run of it is kept in the record yet."
    table = [t for t in basic["table"] if t.get("rows")]
    rows = sum(t["rows"] for t in table)
    identical = sum(t["identical values"] * t["rows"] for t in table) / rows if rows else float("nan")
    return (head + f" Kept run ({basic.get('label', 'basic')}): {len(table)} batches "
            f"({', '.join(t.get('unit', t['images']) for t in table)}), {rows} rows, {identical:.2%} of the values "
            f"identical to the last bit, {sum(t['outside interval'] for t in table)} of "
            f"{sum(t['aggregates'] for t in table)} aggregates outside the record's interval, "
            f"{basic.get('seconds', 0):.0f} s; last line of its output: `{basic.get('last_line', '')}`")


def version_table(profile: str = "embedded", smoke: bool = False):
    """The record's commit, code hash and date, and the artifact's version (``CITATION.cff``)."""
    m = manifest(profile, smoke)
    import yaml

    cff_path = paths.root() / "CITATION.cff"
    cff = yaml.safe_load(cff_path.read_text()) if cff_path.is_file() else {}
    def text(commit: dict | None) -> str:
        commit = commit or {}
        return (commit.get("sha") or "unknown")[:12] + (" (with uncommitted changes)" if commit.get("dirty") else "")

    computed = sorted({text(e.get("commit")) for e in (m.get("experiments") or {}).values()})
    frame = pd.DataFrame([
        ("artifact version (CITATION.cff)", str(cff.get("version", "unknown"))),
        ("released (CITATION.cff)", str(cff.get("date-released", "unknown"))),
        ("repository", str(cff.get("repository-code", "unknown"))),
        ("experiments computed at commit", ", ".join(computed) or "unknown"),
        ("record last written at commit", text(m.get("commit"))),
        ("numeric code hash (the experiments' keys)", (m.get("inputs") or {}).get("code", "unknown")),
        ("record written (UTC)", m.get("written_at", "unknown")),
        ("record size", f"{m.get('bytes', 0) / 1e6:.1f} MB"),
    ], columns=["", "value"])
    return styled(frame, TableSpec(list(frame.columns))), "**Version.** The record this site renders."
