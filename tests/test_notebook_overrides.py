"""A page's ``overrides``: the `fairdd run --set` grammar, parsed by the same code (fairdd.cli.notebook_config)."""

import pytest

from fairdd import cli
from fairdd.config import assignments


def test_overrides_build_the_same_config_as_the_command():
    page = cli.notebook_config("kd_fairness", "smoke", ["seeds=0,1"])
    command = cli.build_config("kd_fairness", "smoke", ["seeds=0,1"])[2]
    assert page == command and page.seeds == (0, 1)
    assert cli.notebook_config("kd_fairness", "smoke") == cli.build_config("kd_fairness", "smoke")[2]


def test_nested_overrides_and_notebook_options():
    config = cli.notebook_config("bias_dd", "smoke", ["seeds=0"], colour_severity=2)
    assert config != cli.notebook_config("bias_dd", "smoke", ["seeds=0"])  # the option reached the data spec
    assert config == cli.build_config("bias_dd", "smoke", ["seeds=0", "colour_severity=2"])[2]
    nested = cli.notebook_config("classwise_dd", "smoke", ["data.train_per_class=30"])
    assert nested.data.train_per_class == 30


@pytest.mark.parametrize(
    ("overrides", "options", "match"),
    [
        (["no_such_key=1"], {}, "has no key 'no_such_key'"),
        (["seeds=zero"], {}, "--set seeds=zero"),
        ("seeds=0", {}, "must be a list of key=value strings"),
        (["colour_severity=2"], {"colour_severity": 3}, "given both as a parameter and in the overrides"),
        ([], {"severity": 3}, "for_profile has no option"),
    ],
)
def test_bad_overrides_say_what_is_allowed_before_any_work(overrides, options, match):
    with pytest.raises(cli.CLIError, match=match):
        cli.notebook_config("bias_dd", "smoke", overrides, **options)


def test_the_parameter_validator():
    assignments("overrides", [])
    assignments("overrides", ["a=1", "b.c=x,y"])
    with pytest.raises(ValueError, match="must be a list"):
        assignments("overrides", "a=1")
    with pytest.raises(ValueError, match="are not key=value strings"):
        assignments("overrides", ["a"])
