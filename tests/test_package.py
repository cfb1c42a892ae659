import importlib

import fairdd


def test_every_listed_submodule_imports() -> None:
    for name in fairdd._SUBMODULES:
        module = getattr(fairdd, name)
        assert module is importlib.import_module(f"fairdd.{name}")


def test_unknown_attribute_is_an_attribute_error() -> None:
    try:
        fairdd.nonexistent  # noqa: B018
    except AttributeError as err:
        assert "nonexistent" in str(err)
    else:
        raise AssertionError("expected AttributeError")
