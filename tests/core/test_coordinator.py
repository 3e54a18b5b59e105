from __future__ import annotations

import pytest

from fastfl.core.coordinator import Coordinator, CoordinatorError


def test_map_id_local_and_global_modes():
    c = Coordinator({1: 3, 2: 2, 3: 4})
    assert c.total == 9
    assert [c.map_id(i) for i in range(9)] == [
        (1, 0),
        (1, 1),
        (1, 2),
        (2, 0),
        (2, 1),
        (3, 0),
        (3, 1),
        (3, 2),
        (3, 3),
    ]
    c.switch()
    assert c.mode == "GLOBAL"
    assert c.map_id(4) == (2, 4)
    c.switch()
    assert c.mode == "LOCAL"


def test_map_id_list_groups_in_order_of_first_appearance():
    c = Coordinator({1: 3, 2: 2, 3: 4})
    assert c.map_id_list([6, 0, 4, 2, 5]) == {3: [1, 0], 1: [0, 2], 2: [1]}
    assert c(range(3)) == {1: [0, 1, 2]}
    assert c((3, 4)) == {2: [0, 1]}
    assert c(7) == (3, 2)


@pytest.mark.parametrize("bad", [9, 100, -1])
def test_out_of_range_id_is_a_clear_error(bad):
    c = Coordinator({1: 3, 2: 2, 3: 4})
    with pytest.raises(CoordinatorError, match=r"out of range; valid ids are 0\.\.8"):
        c.map_id(bad)
    with pytest.raises(ValueError):
        c.map_id_list([0, bad])


def test_bad_setup_and_mode_and_types():
    with pytest.raises(ValueError, match="Invalid Map Mode"):
        Coordinator({1: 1}, mode="REMOTE")
    with pytest.raises(ValueError, match="client counts"):
        Coordinator({1: -2})
    with pytest.raises(TypeError):
        Coordinator([1, 2])
    with pytest.raises(TypeError):
        Coordinator({1: 2})(1.5)
    with pytest.raises(TypeError):
        Coordinator({1: 2})("ab")


def test_str_matches_fedlab():
    c = Coordinator({1: 2, 2: 3})
    assert str(c) == "Coordinator map information: {1: 2, 2: 3} \nMap mode: LOCAL \nTotal: 5"
