import pytest

from fairaug.errors import ConfigError
from fairaug.experiment.arms import ARMS, chosen_arms


def test_doses_add_balance_and_oracle_arms():
    arms, left_out = chosen_arms(list(ARMS), [0.5, 1, 2], True)
    names = [arm.name for arm in arms]
    assert names[: len(ARMS)] == list(ARMS) and left_out == []
    assert names[len(ARMS) :] == ["balance@0.5", "balance@2", "oracle@0.5", "oracle@2"]
    assert {a.name: a.dose for a in arms}["oracle@0.5"] == 0.5
    assert [a.needs_generator_of_real_subjects for a in arms if a.name.startswith("oracle")] == [True] * 4
    assert {a.name for a in arms if a.needs_diffusion} == {"copy", "balance", "synth_only", "shuffled", "balance@0.5",
                                                           "balance@2"}  # fmt: skip


def test_real_data_runs_every_arm_but_the_oracles():
    arms, left_out = chosen_arms(list(ARMS), [2], False)
    assert left_out == ["oracle", "oracle_control", "oracle@2"]
    assert "oracle" not in {a.name for a in arms} and "balance@2" in {a.name for a in arms}


@pytest.mark.parametrize(
    "names, doses, message",
    [
        (["real_only", "augment"], [], r"unknown arm\(s\) \['augment'\]"),
        (["balance"], [], "must include real_only"),
        (["real_only", "balance"], [0], "positive multiples"),
    ],
)
def test_bad_designs_are_refused(names, doses, message):
    with pytest.raises(ConfigError, match=message):
        chosen_arms(names, doses, True)
