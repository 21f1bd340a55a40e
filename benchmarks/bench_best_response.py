"""Best-response game: rounds and time to a verified equilibrium, by market size.

    python benchmarks/bench_best_response.py              # 32, 100, 300 members (+ ieee33 100, 300)
    python benchmarks/bench_best_response.py --quick      # 32 and 100 members only
    python benchmarks/bench_best_response.py --verify-300 # also check the 300-member target finals (minutes)
    python benchmarks/bench_best_response.py --curve      # rounds-versus-members table and PNG
    python benchmarks/bench_best_response.py --rates      # success rates, seeds 30-49 (30-39 at 300)
    python benchmarks/bench_best_response.py --streams 20 # 100-member rows over 20 tie-break streams

Markets (``gridledger.bidding.game.synthetic``): ``synthetic`` = members on
random buses of the IEEE 33-bus feeder, fee 0.002 tokens/kWh per hop;
``ieee33`` = the same members (several per bus) with the distance fee of
``scenarios/ieee33.toml`` (0.005 tokens/kWh per km of path). kappa 1/2, buyers
value 0.18-0.30, sellers cost 0.04-0.10 tokens/kWh, caps 0.2-3 kWh, 1 % price
ticks (one tick's worth = 0.005 of the payoff scale). Seeds 3, 4, 6 (held
out: the settings were chosen on seeds 10-29).

Rows per market and size, for two settings: ``target`` = the issue-15 goal, an
equilibrium within eps = 1e-3 of the payoff scale, sought at 1e-3 from the
competitive start with bids on a 5x finer price grid (0.2 % ticks: one tick's
worth = 1e-3; the 1 % grid is part of it), shading at most one tick per reply,
aggressive-first sweep order (``TARGET`` below; docs/best_response.md), and
``default`` = the shipped ladder of the main job (1 % grid, one tick's worth,
then 1e-3, 1e-4, shuffled order). Worst rounds and worst time over
the seeds (time includes the competitive start, one LP, and excludes the numba
compile); the note says how many seeds met 1e-3 (and 1e-4). For <= 100 members
(and 300 with --verify-300) every final profile is checked by the independent
``nash.check_equilibrium`` (101 prices x 11 quantities per member, the reference
clearing): the row ``br_nash_gain_*`` is the largest gain it finds, which must be
within the tolerance each run reports.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from gridledger.bidding.game import BRSettings, Game, Strategy, run_dynamics
from gridledger.bidding.game.model import AT_SCALE
from gridledger.bidding.game.nash import check_equilibrium
from gridledger.bidding.game.start import competitive_profile
from gridledger.bidding.game.synthetic import feeder_game, synthetic_game
from gridledger.scenario import load_scenario
from gridledger.world import build_world

SEEDS = (3, 4, 6)
ROOT = Path(__file__).resolve().parents[1]
TARGET = AT_SCALE  # the settings of the issue-15 target rows
DEFAULT = BRSettings()
MakeGame = Callable[[int, int], tuple[Game, list[Strategy]]]


def ieee33_maker() -> MakeGame:
    """Games on the ieee33 feeder with the scenario's distance fee table."""
    world = build_world(load_scenario(ROOT / "scenarios" / "ieee33.toml"))
    if world.fees is None:
        message = "scenarios/ieee33.toml has no network fee"
        raise SystemExit(message)
    fees = np.asarray(world.fees, dtype=np.int64)
    buses = range(1, world.n_buses)

    def make(n: int, seed: int) -> tuple[Game, list[Strategy]]:
        return feeder_game(n, seed, fees, buses)

    return make


def one(make: MakeGame, n: int, seed: int, settings: BRSettings, verify: bool) -> dict[str, Any]:
    """One run: rounds, time, tolerance met, first round quiet at 1e-3, check gain."""
    game, _ = make(n, seed)
    t0 = time.perf_counter()
    start = competitive_profile(game)
    result = run_dynamics(game, start, settings)
    elapsed = time.perf_counter() - t0
    gain = None
    if verify:
        report = check_equilibrium(game, result.final, n_prices=101, n_quantities=11)
        gain = report.max_gain_rel
    return {
        "rounds": result.rounds,
        "time_s": elapsed,
        "converged": result.converged,
        "epsilon": result.epsilon,
        "nash_gain": gain,
    }


def _rows(market: str, n: int, tag: str, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    met3 = sum(r["converged"] and r["epsilon"] <= 1.0001e-3 for r in runs)
    met4 = sum(r["converged"] and r["epsilon"] <= 1.0001e-4 for r in runs)
    conv = sum(r["converged"] for r in runs)
    note = (
        f"{market}, seeds {list(SEEDS)}: converged {conv}/{len(runs)}, within 1e-3 {met3}, "
        f"exact (1e-4) {met4}"
    )
    prefix = "br" if market == "synthetic" else f"br_{market}"
    rounds_target = 30 if n <= 100 else 60
    rows = [
        {
            "name": f"{prefix}_rounds_{n}_{tag}",
            "value": float(max(r["rounds"] for r in runs)),
            "unit": "rounds",
            "target": rounds_target if tag == "target" and n >= 100 else None,
            "note": note,
        },
        {
            "name": f"{prefix}_time_{n}_{tag}",
            "value": round(max(r["time_s"] for r in runs), 3),
            "unit": "s",
            "target": 10.0 if tag == "target" and n >= 300 else None,
            "note": note,
        },
    ]
    checked = [r for r in runs if r["nash_gain"] is not None]
    if checked:
        ok = sum(r["nash_gain"] <= r["epsilon"] for r in checked)
        rows.append(
            {
                "name": f"{prefix}_nash_gain_{n}_{tag}",
                "value": float(max(r["nash_gain"] for r in checked)),
                "unit": "rel",
                "target": float(max(r["epsilon"] for r in checked)),
                "note": f"independent check passes at the reported tolerance in {ok}/"
                f"{len(checked)} (101 prices x 11 quantities)",
            }
        )
    return rows


def run(
    sizes: tuple[int, ...] = (32, 100, 300), *, ieee33: bool = True, verify_300: bool = False
) -> list[dict[str, Any]]:
    warm, start = synthetic_game(8, 0)
    run_dynamics(warm, start, BRSettings(k_max=1))  # numba compile
    markets: list[tuple[str, MakeGame]] = [("synthetic", synthetic_game)]
    if ieee33:
        markets.append(("ieee33", ieee33_maker()))
    rows: list[dict[str, Any]] = []
    for market, make in markets:
        for n in sizes:
            if market == "ieee33" and n < 100:
                continue
            for tag, settings in (("target", TARGET), ("default", DEFAULT)):
                verify = n <= 100 or (verify_300 and tag == "target")
                runs = [one(make, n, seed, settings, verify) for seed in SEEDS]
                rows.extend(_rows(market, n, tag, runs))
    return rows


def curve(
    sizes: tuple[int, ...] = (16, 32, 64, 100, 200, 300), seeds: tuple[int, ...] = tuple(range(8))
) -> list[dict[str, Any]]:
    """Rounds and time to 1e-3 (target settings) per size: mean and worst over seeds."""
    warm, start = synthetic_game(8, 0)
    run_dynamics(warm, start, BRSettings(k_max=1))
    out = []
    for market, make in (("synthetic", synthetic_game), ("ieee33", ieee33_maker())):
        for n in sizes:
            runs = [one(make, n, seed, TARGET, verify=False) for seed in seeds]
            met = [r for r in runs if r["converged"] and r["epsilon"] <= 1.0001e-3]
            rounds = [r["rounds"] for r in runs]
            times = [r["time_s"] for r in runs]
            out.append(
                {
                    "market": market,
                    "members": n,
                    "seeds": len(seeds),
                    "within_1e-3": len(met),
                    "rounds_mean": float(np.mean(rounds)),
                    "rounds_worst": int(max(rounds)),
                    "rounds_mean_met": float(np.mean([r["rounds"] for r in met])) if met else None,
                    "time_mean_s": float(np.mean(times)),
                    "time_worst_s": float(max(times)),
                }
            )
            print(out[-1], flush=True)
    return out


def plot_curve(table: list[dict[str, Any]], path: Path) -> None:
    fig, (ax_r, ax_s, ax_t) = plt.subplots(1, 3, figsize=(12, 3.4))
    for market, colour in (("synthetic", "tab:blue"), ("ieee33", "tab:orange")):
        rows = [r for r in table if r["market"] == market]
        n = [r["members"] for r in rows]
        ax_r.plot(n, [r["rounds_mean"] for r in rows], "o-", color=colour, label=f"{market} mean")
        ax_r.plot(n, [r["rounds_worst"] for r in rows], "v:", color=colour, label=f"{market} worst")
        share = [r["within_1e-3"] / r["seeds"] for r in rows]
        ax_s.plot(n, share, "o-", color=colour, label=market)
        ax_t.plot(n, [r["time_mean_s"] for r in rows], "o-", color=colour, label=f"{market} mean")
        ax_t.plot(n, [r["time_worst_s"] for r in rows], "v:", color=colour, label=f"{market} worst")
    ax_r.axhline(30, color="grey", lw=0.8, ls="--")
    ax_r.axhline(60, color="grey", lw=0.8, ls="--")
    ax_r.set_xlabel("members")
    ax_r.set_ylabel("rounds (cap 100)")
    ax_s.set_xlabel("members")
    ax_s.set_ylabel("share of seeds")
    ax_s.set_ylim(0, 1.05)
    ax_s.legend(fontsize=7)
    ax_s.set_title("settled within 1e-3 (cap 100)", fontsize=9)
    ax_t.set_xlabel("members")
    ax_t.set_ylabel("time, s")
    ax_t.set_yscale("log")
    ax_r.legend(fontsize=7)
    ax_r.set_title("rounds at 1e-3, aggressive-first order", fontsize=9)
    ax_t.set_title("time incl. competitive start", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def rates(
    seeds_100: range = range(30, 50), seeds_300: range = range(30, 40)
) -> list[dict[str, Any]]:
    """Share of seeds reaching a converged 1e-3 equilibrium within the round targets
    (target settings; 100 members <= 30 rounds, 300 members <= 60 rounds and <= 10 s).

    The default seeds are held out: the target settings were chosen on seeds 10-29.
    """
    warm, start = synthetic_game(8, 0)
    run_dynamics(warm, start, BRSettings(k_max=1))
    out = []
    for market, make in (("synthetic", synthetic_game), ("ieee33", ieee33_maker())):
        for n, seeds, cap in ((100, seeds_100, 30), (300, seeds_300, 60)):
            runs = [one(make, n, seed, TARGET, verify=False) for seed in seeds]
            met = [r["converged"] and r["epsilon"] <= 1.0001e-3 for r in runs]
            within = [
                m and r["rounds"] <= cap and (n < 300 or r["time_s"] <= 10.0)
                for m, r in zip(met, runs, strict=True)
            ]
            out.append(
                {
                    "market": market,
                    "members": n,
                    "seeds": f"{seeds.start}-{seeds.stop - 1}",
                    "within_1e-3": sum(met),
                    "within_targets": sum(within),
                    "rounds": [
                        r["rounds"] if m else -r["rounds"] for m, r in zip(met, runs, strict=True)
                    ],
                    "time_worst_s": round(max(r["time_s"] for r in runs), 2),
                }
            )
            print(out[-1], flush=True)
    return out


def streams(n_streams: int = 20, seeds: tuple[int, ...] = (3, 4, 6)) -> list[dict[str, Any]]:
    """Rounds of the 100-member target rows over ``n_streams`` tie-break streams
    (``BRSettings.seed`` 0..n-1; the other rows use stream 0): the same game, only the
    random order among equally aggressive quotes changes. Share within 30 rounds at 1e-3
    and a Wilson 95 % interval over the streams."""
    out = []
    for market, make in (("synthetic", synthetic_game), ("ieee33", ieee33_maker())):
        for seed in seeds:
            game, _ = make(100, seed)
            start = competitive_profile(game)
            rounds = []
            for stream in range(n_streams):
                result = run_dynamics(game, start, dataclasses.replace(TARGET, seed=stream))
                met = result.converged and result.epsilon <= 1.0001e-3
                rounds.append(result.rounds if met else -result.rounds)
            k = sum(0 < r <= 30 for r in rounds)
            low, high = _wilson(k, n_streams)
            out.append(
                {
                    "market": market,
                    "seed": seed,
                    "streams": f"0-{n_streams - 1}",
                    "within_30": k,
                    "share_ci95": (round(low, 2), round(high, 2)),
                    "rounds": rounds,
                }
            )
            print(out[-1], flush=True)
    return out


def _wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a share k / n."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(centre - half), float(centre + half)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="32 and 100 members only")
    parser.add_argument("--verify-300", action="store_true", help="check 300-member finals too")
    parser.add_argument("--curve", action="store_true", help="rounds-versus-members curve")
    parser.add_argument("--rates", action="store_true", help="success rates over more seeds")
    parser.add_argument(
        "--streams", type=int, default=0, help="100-member rows over this many tie-break streams"
    )
    args = parser.parse_args()
    if args.streams:
        streams(args.streams)
    elif args.rates:
        rates()
    elif args.curve:
        table = curve()
        plot_curve(table, ROOT / "docs" / "best_response_curve.png")
    else:
        sizes = (32, 100) if args.quick else (32, 100, 300)
        for row in run(sizes, verify_300=args.verify_300):
            print(row)
