"""A meshed feeder's committed network as spanning tree plus loop correction.

The loop form is an exact rewriting of the meshed linear model (Woodbury), rounded
differently: on the shipped meshed feeder and on SimBench's meshed MV grids every relief
entry is within two units of the dense form's (npct per Wh), while the correction itself
reaches thousands of units. ``auto`` keeps the dense form up to 443 buses.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from gridledger.errors import SecurityError
from gridledger.grid import load_feeder
from gridledger.grid.sensitivities import sensitivities
from gridledger.market.loops import DENSE_MESHED_MAX_BUSES
from gridledger.security.justification import linear_network
from gridledger.security.meshed_network import looped_network

needs_simbench = pytest.mark.skipif(
    importlib.util.find_spec("simbench") is None, reason="needs the simbench extra"
)


def _forms(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    feeder = load_feeder(name)
    sens = sensitivities(feeder)
    dense = linear_network(feeder, sens, 0.25, "dense")
    loops = linear_network(feeder, sens, 0.25, "loops")
    assert dense.tree is None and loops.loops is not None
    return dense.relief, loops.relief, loops.loops.correction()


def test_the_loop_form_of_ieee33_meshed_is_its_dense_form_within_rounding() -> None:
    dense, looped, correction = _forms("ieee33_meshed")
    assert int(np.abs(dense - looped).max()) <= 2
    assert int(np.abs(correction).max()) > 1_000  # the loops matter: the tree alone is far off


@needs_simbench
@pytest.mark.parametrize("name", ["1-MV-rural--0-sw", "1-MV-semiurb--0-sw"])
def test_the_loop_form_of_simbench_mv_grids_is_their_dense_form_within_rounding(name: str) -> None:
    dense, looped, correction = _forms(name)
    assert int(np.abs(dense - looped).max()) <= 2
    assert int(np.abs(correction).max()) > 1_000


def test_auto_keeps_small_meshed_feeders_dense_and_names_bad_forms() -> None:
    feeder = load_feeder("ieee33_meshed")
    sens = sensitivities(feeder)
    assert feeder.n_buses <= DENSE_MESHED_MAX_BUSES
    assert linear_network(feeder, sens, 0.25).loops is None
    with pytest.raises(SecurityError, match="form 'tree' is not one of"):
        linear_network(feeder, sens, 0.25, "tree")
    radial = load_feeder("ieee33")
    with pytest.raises(SecurityError, match="is radial"):
        looped_network(radial, 1.0, 1.0, 900)
    tree_form = linear_network(radial, sensitivities(radial), 0.25, "loops")
    assert tree_form.tree is not None and tree_form.loops is None  # radial: its tree form
