import pytest

from fairdd.config import PROFILES, check_choice, check_int, check_number, check_profile, check_sequence


def test_profiles_are_the_three_documented_ones() -> None:
    assert PROFILES == ("smoke", "cpu", "paper")


def test_check_choice_names_field_value_and_allowed() -> None:
    check_choice("method", "dc", ["dc", "dm"])
    with pytest.raises(ValueError, match=r"method='mtx' is not allowed; choose one of \['dc', 'dm'\]"):
        check_choice("method", "mtx", ["dc", "dm"])


def test_check_profile() -> None:
    check_profile("cpu")
    with pytest.raises(ValueError, match="profile='gpu'"):
        check_profile("gpu")


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3"])
def test_check_int_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match="images_per_class="):
        check_int("images_per_class", bad, minimum=1)


def test_check_int_bounds() -> None:
    check_int("k", 3, minimum=1, maximum=3)
    with pytest.raises(ValueError, match="k=4 must be <= 3"):
        check_int("k", 4, maximum=3)


def test_check_number() -> None:
    check_number("bias_ratio", 0.0, minimum=0.0, maximum=1.0)
    check_number("bias_ratio", 1, minimum=0.0, maximum=1.0)
    with pytest.raises(ValueError, match="bias_ratio=1.5 must be <= 1.0"):
        check_number("bias_ratio", 1.5, minimum=0.0, maximum=1.0)
    with pytest.raises(ValueError, match="lr=0.0 must be > 0"):
        check_number("lr", 0.0, minimum=0, strict_minimum=True)
    with pytest.raises(ValueError, match="NaN"):
        check_number("lr", float("nan"))
    with pytest.raises(ValueError, match="must be a number"):
        check_number("lr", "0.1")


def test_check_sequence() -> None:
    check_sequence("sizes", [1, 2], lambda f, v: check_int(f, v, minimum=1))
    with pytest.raises(ValueError, match=r"sizes\[1\]=0"):
        check_sequence("sizes", [1, 0], lambda f, v: check_int(f, v, minimum=1))
    with pytest.raises(ValueError, match="must not be empty"):
        check_sequence("sizes", [], lambda f, v: None)
