"""What a device-hour costs under each price basis the study compares, from the hardware
catalog (on-demand prices, purchase prices, TDP, each with its source) and the study's price
inputs (agentc/study/prices.yaml: reserved discounts, amortisation life, electricity, PUE,
each with its source).

- on-demand: the catalog's public price per device-hour.
- reserved-1y / reserved-3y: on-demand less the discount (an "up to" figure: an upper bound).
- owned: purchase price over the amortisation life, plus power at TDP times PUE at the
  electricity price. Only the accelerator is priced, not the server around it.
- owned, older at book value: as owned, but the older GPUs are already owned at
  `older_gpu_age_years`: their remaining book value (straight line) over their remaining life
  (which per hour equals the new price over the whole life), and nothing once fully
  depreciated (power only): the "extend the life of deployed hardware" case.

The CPU servers cost `CPU_SERVER_PER_HOUR` under every basis: an input, the order of a
2-vCPU cloud instance on demand (no public price exists for this machine's host).
A device with no figure for a basis is left out of that basis's fleets (said in the report).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from agentc.placement.cluster import HOURS_PER_YEAR
from agentc.study.fleets import CPU, OLDER

PRICES_PATH = Path(__file__).with_name("prices.yaml")
CPU_SERVER_PER_HOUR = 0.10
ON_DEMAND, RESERVED_1Y, RESERVED_3Y, OWNED, OWNED_BOOK = ("on-demand", "reserved-1y", "reserved-3y", "owned",
                                                         "owned, older at book value")
BASES = (ON_DEMAND, RESERVED_1Y, RESERVED_3Y, OWNED, OWNED_BOOK)


@dataclass(frozen=True)
class Inputs:
    one_year_discount: float
    three_year_discount: float
    life_years: float
    usd_per_kwh: float
    pue: float
    older_age_years: float
    on_demand_multiplier: float = 1.0  # the sweep's
    older_multiplier: float = 1.0  # the sweep's: older GPUs' prices only


def load_inputs(path: Path = PRICES_PATH) -> tuple[Inputs, dict]:
    """The defaults and the sweep's ranges."""
    d = yaml.safe_load(path.read_text())
    r, o = d["reserved"], d["owned"]
    return Inputs(float(r["one_year_discount"]), float(r["three_year_discount"]), float(o["amortisation_life_years"]),
                  float(o["electricity_usd_per_kwh"]), float(o["pue"]), float(o["older_gpu_age_years"])), d["sweep"]


def hourly(basis: str, inputs: Inputs, hardware) -> dict[str, float]:
    """Device type -> $ per device-hour under `basis`, for the types that have the figures."""
    out = {CPU: CPU_SERVER_PER_HOUR}
    for t, hw in hardware.items():
        if t == CPU or hw.kind == "cpu":
            continue
        price = _hourly(basis, inputs, hw, t in OLDER)
        if price is not None:
            out[t] = price * (inputs.older_multiplier if t in OLDER else 1.0)
    return out


def _hourly(basis: str, inputs: Inputs, hw, older: bool) -> float | None:
    if basis in (ON_DEMAND, RESERVED_1Y, RESERVED_3Y):
        if hw.on_demand_per_hour is None:
            return None
        discount = {ON_DEMAND: 0.0, RESERVED_1Y: inputs.one_year_discount, RESERVED_3Y: inputs.three_year_discount}
        return hw.on_demand_per_hour * inputs.on_demand_multiplier * (1 - discount[basis])
    if hw.capex_usd is None or hw.tdp_w is None:
        return None
    power = hw.tdp_w / 1e3 * inputs.pue * inputs.usd_per_kwh
    capital = hw.capex_usd / (inputs.life_years * HOURS_PER_YEAR)
    if basis == OWNED_BOOK and older and inputs.older_age_years >= inputs.life_years:
        capital = 0.0  # fully depreciated: its book value is gone, it costs its power
    return capital + power
