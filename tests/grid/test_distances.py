from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridledger.grid import ElectricalDistances, Feeder, electrical_distances, run_ac

SHIPPED = ("ieee33", "cigre_lv", "cigre_lv_full")


@pytest.fixture(scope="module")
def dists(feeders: dict[str, Feeder]) -> dict[str, ElectricalDistances]:
    return {name: electrical_distances(f) for name, f in feeders.items()}


@pytest.mark.parametrize("name", SHIPPED)
def test_matrix_properties(
    feeders: dict[str, Feeder], dists: dict[str, ElectricalDistances], name: str
) -> None:
    f, d = feeders[name], dists[name]
    b, n_lines = f.n_buses, f.n_lines
    assert d.ptdf.shape == (n_lines, b)
    for m in (d.path_km, d.path_ohm, d.ptdf_distance):
        assert m.shape == (b, b)
        np.testing.assert_array_equal(m, m.T)
        assert np.all(m >= 0)
        np.testing.assert_array_equal(np.diag(m), 0.0)
    assert np.all(d.ptdf[:, 0] == 0)  # slack column
    assert set(np.unique(d.ptdf)) <= {-1.0, 0.0, 1.0}
    np.testing.assert_array_equal(d.zone, f.branch_of_bus)
    assert d.line_length_km.shape == d.line_rating_kw.shape == (n_lines,)
    np.testing.assert_allclose(d.line_rating_kw, np.sqrt(3) * f.line_vn_kv * f.line_max_i_ka * 1000)


@pytest.mark.parametrize("name", SHIPPED)
def test_tree_metric(dists: dict[str, ElectricalDistances], name: str) -> None:
    """Distances are additive along the tree and obey the triangle inequality."""
    for m in (dists[name].path_km, dists[name].path_ohm, dists[name].ptdf_distance):
        tri = m[:, :, None] + m[None, :, :]  # d(i,j) + d(j,k)
        assert np.all(m[:, None, :] <= tri.transpose(0, 2, 1) + 1e-9)


def test_ieee33_known_values(ieee33: Feeder, dists: dict[str, ElectricalDistances]) -> None:
    d = dists["ieee33"]
    lengths = ieee33.line_length_km
    # trunk 0..17 is lines 0..16 in order
    assert d.path_km[0, 17] == pytest.approx(lengths[:17].sum())
    assert d.ptdf_distance[0, 17] == 17
    # 17 (trunk end) to 32 (end of lateral 5-25-...-32): 12 + 8 lines
    assert d.ptdf_distance[17, 32] == 20
    z = np.hypot(ieee33.line_r_ohm, ieee33.line_x_ohm)
    assert d.path_ohm[18, 22] == pytest.approx(z[17] + z[1] + z[21])  # 18-1-2-22


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(p=st.lists(st.floats(-100, 100), min_size=32, max_size=32))
def test_ptdf_is_dc_flow(
    ieee33: Feeder, dists: dict[str, ElectricalDistances], p: list[float]
) -> None:
    """PTDF @ injections equals the AC active flow when losses vanish (tiny powers)."""
    inj = np.array([0.0, *p]) * 1e-3  # watt level: AC losses negligible
    res = run_ac(ieee33, inj, np.zeros(33))
    # the NR stops at a 1e-8 MVA (1e-5 kW) mismatch per bus, and it starts from the
    # previous call's result, so up to 32 such mismatches can add up along the trunk
    np.testing.assert_allclose(res.line_p_from_kw, dists["ieee33"].ptdf @ inj, atol=5e-4)
