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


CHAPTERS = ("bias_dd", "classwise_dd", "compare_dd_kd", "dd_methods", "embedding_dd", "kd_fairness", "kd_text")


@pytest.mark.parametrize("name", CHAPTERS)
def test_every_chapter_takes_overrides_and_builds_its_config_from_them(name):
    """The page's parameters declare ``overrides`` and its config comes from cli.notebook_config
    (so the page renders exactly the runs the overrides select), with the rerun box."""
    import nbformat

    from fairdd.paths import REPO_ROOT

    cells = nbformat.read(REPO_ROOT / "notebooks" / f"{name}.ipynb", as_version=4).cells
    parameters = next(c for c in cells if "parameters" in c.metadata.get("tags", []))
    assert "overrides = []" in parameters.source
    code = "\n".join(c.source for c in cells if c.cell_type == "code")
    assert "overrides=assignments" in code
    assert f'cli.notebook_config(\n    "{name}", profile, overrides' in code or f'cli.notebook_config("{name}", profile, overrides' in code
    assert "cli.show_rerun(" in code and ".for_profile(profile" not in code
