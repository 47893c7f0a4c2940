"""benchmarks/pipeline_before_after.py pairs two pipeline runs only where real_only agrees."""

import numpy as np
import pandas as pd
import pytest

from benchmarks.pipeline_before_after import comparison, paired_table


def run(arm_predictions: dict) -> pd.DataFrame:
    """A pipeline's long predictions: 2 training sets x 3 seeds x 40 test subjects per arm."""
    subjects = pd.DataFrame(
        {"subject_id": [f"S{i:02d}" for i in range(40)], "sex": ["female"] * 20 + ["male"] * 20, "label": [0, 1] * 20}
    )
    parts = []
    for arm, predict in arm_predictions.items():
        for training_set in (0, 1):
            for seed in (0, 1, 2):
                rows = subjects.assign(arm=arm, training_set=training_set, seed=seed, scenario="default")
                parts.append(rows.assign(prediction=predict(rows, training_set, seed)))
    return pd.concat(parts, ignore_index=True)


def truth(rows, *_):
    return rows.label.to_numpy()


def misses_women(share):
    """Correct except for the first `share` of the women with heart failure, a few more per seed."""

    def predict(rows, training_set, seed):
        women = np.flatnonzero((rows.sex == "female") & (rows.label == 1))
        missed = women[: int(share * len(women)) + seed]
        prediction = rows.label.to_numpy().copy()
        prediction[missed] = 0
        return prediction

    return predict


def test_the_change_is_paired_arm_by_arm():
    before = run({"real_only": misses_women(0.4), "balance": misses_women(0.5)})
    after = run({"real_only": misses_women(0.4), "balance": misses_women(0.1)})
    rows, _ = comparison(paired_table(before, after, ["balance"]), ["balance"], n_boot=200)
    women = next(row for row in rows if row[1] == "balanced accuracy (sex=female)")
    # 10 HF women: before misses 5-7 of them (recall 0.3-0.5), after 1-3 (0.7-0.9): +0.2 in balanced accuracy
    assert float(women[4]) == pytest.approx(0.2)
    assert women[-1] == 6
    men = next(row for row in rows if row[1] == "balanced accuracy (sex=male)")
    assert float(men[4]) == 0.0


def test_runs_whose_real_only_differs_are_not_paired():
    before = run({"real_only": misses_women(0.4), "balance": truth})
    after = run({"real_only": misses_women(0.2), "balance": truth})
    with pytest.raises(SystemExit, match="real_only predictions differ"):
        paired_table(before, after, ["balance"])
    with pytest.raises(SystemExit, match="arm 'synth_only' is missing from the before run"):
        paired_table(before, before, ["synth_only"])
