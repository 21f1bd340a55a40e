"""Side-by-side runs of one scenario under several settings (the headline experiments).

``gridledger compare scenarios/ieee33.toml --vary market.network_fee=none,flat,distance
--set market.clearing=greedy`` runs one variant per value, writes each variant's
folder, a ``compare.csv`` table of KPIs and a ``compare.html`` page with the
trade maps side by side. Variants run off chain unless ``--set chain.backend=...``
says otherwise: the comparison is about market outcomes, which the chain
reproduces to the unit (see ``gridledger audit``).
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from gridledger.errors import ScenarioError
from gridledger.grid import load_feeder
from gridledger.report.folder import prepare_out_dir, run_to_folder
from gridledger.report.html import Image, Page, Section, Table, write_page
from gridledger.report.plots import draw_trade_map
from gridledger.report.tables import load_tables
from gridledger.scenario import load_scenario

__all__ = ["COMPARE_KPIS", "COMPARE_UNITS", "compare", "parse_vary", "with_units"]

log = logging.getLogger(__name__)

COMPARE_KPIS = [
    "traded_kwh",
    "p2p_share",
    "mean_trade_distance_km",
    "local_share",
    "dg_local_share",
    "social_welfare",
    "network_fee_revenue",
    "grid_import_kwh",
    "v_min_pu",
    "v_max_pu",
    "max_line_loading_pct",
]

# the unit of each KPI, shown in the header of the printed table and of compare.html
# (compare.csv keeps the bare KPI names, which its readers use)
COMPARE_UNITS = {
    "traded_kwh": "kWh",
    "p2p_share": "share",
    "mean_trade_distance_km": "km",
    "local_share": "share",
    "dg_local_share": "share",
    "social_welfare": "tokens",
    "network_fee_revenue": "tokens",
    "grid_import_kwh": "kWh",
    "v_min_pu": "p.u.",
    "v_max_pu": "p.u.",
    "max_line_loading_pct": "%",
}


def with_units(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with each KPI column's unit appended to its name, e.g. ``traded_kwh (kWh)``."""
    return table.rename(
        columns={k: f"{k} ({u})" for k, u in COMPARE_UNITS.items() if k in table.columns}
    )


def parse_vary(text: str) -> tuple[str, list[str]]:
    """``KEY.PATH=V1,V2`` -> (key, [values])."""
    if "=" not in text:
        message = f"--vary {text!r}: expected KEY.PATH=V1,V2,..."
        raise ScenarioError(message)
    key, values = text.split("=", 1)
    parts = [v.strip() for v in values.split(",") if v.strip()]
    if not parts:
        message = f"--vary {text!r}: no values after '='"
        raise ScenarioError(message)
    return key.strip(), parts


def _literal(value: str) -> str:
    """Quote bare words so that they are read as TOML strings."""
    try:
        float(value)
        return value
    except ValueError:
        return value if value[:1] in "[{\"'" or value in ("true", "false") else f'"{value}"'


def compare(
    scenario_path: Path,
    vary: list[str],
    overrides: list[str] | None = None,
    out: Path | None = None,
    progress: bool = False,
    force: bool = False,
) -> pd.DataFrame:
    """Run every combination of the ``vary`` values; return the KPI table.

    ``force`` replaces the results of an earlier comparison in ``out``.
    """
    axes = [parse_vary(v) for v in vary]
    base = ["chain.backend=none", *(overrides or [])]
    first = load_scenario(scenario_path, base)
    out = out or Path("runs") / f"compare-{first.name}"
    variants = []  # every variant is checked before the folder is made and a variant runs
    for combo in itertools.product(*[values for _key, values in axes]):
        sets = [f"{key}={_literal(value)}" for (key, _), value in zip(axes, combo, strict=True)]
        label = ", ".join(
            f"{key.split('.')[-1]}={value}" for (key, _), value in zip(axes, combo, strict=True)
        )
        folder = out / "_".join(value.replace("/", "-") for value in combo)
        variants.append((load_scenario(scenario_path, base + sets), label, folder))
    prepare_out_dir(out, outputs=("compare.csv", "compare.html"), force=force)
    rows, folders = [], []
    for scenario, label, folder in variants:
        log.info("compare: running %s", label)
        kpis = run_to_folder(scenario, folder, progress=progress, force=force)
        rows.append({"variant": label, **{k: kpis.get(k) for k in COMPARE_KPIS}})
        folders.append((label, folder))
    table = pd.DataFrame(rows).set_index("variant")
    table.to_csv(out / "compare.csv")
    _write_page(table, folders, out, first.network.feeder)
    return table


def _write_page(
    table: pd.DataFrame, folders: list[tuple[str, Path]], out: Path, feeder_name: str
) -> None:
    feeder = load_feeder(feeder_name)
    fig = Figure(figsize=(6 * len(folders), 5))
    axes = fig.subplots(1, len(folders), squeeze=False)
    for ax, (label, folder) in zip(axes[0], folders, strict=True):
        draw_trade_map(ax, load_tables(folder), feeder, label)
    fig.tight_layout()
    page = Page(
        "gridledger compare",
        f"Comparison on {feeder_name}",
        [Table(with_units(table))],
        [Section("Trades on the feeder map", [Image.of(fig)])],
    )
    write_page(page, out / "compare.html")
