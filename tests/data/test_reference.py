"""The reader and views on one real cine (Sunnybrook, CC0) in the UK Biobank layout."""

from pathlib import Path

import pandas as pd
import pytest

from fairaug.data.readers import reader_for
from fairaug.data.sources.ukbb import read_ukbb_layout
from fairaug.data.views import ViewBuilder
from fairaug.schemas import ColumnsConfig

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "sunnybrook"

pytestmark = pytest.mark.skipif(not REFERENCE.is_dir(), reason=f"reference data not present at {REFERENCE}")


@pytest.fixture
def reference_row(tmp_path):
    # The reference has no demographics: add some, as a user's metadata would have.
    metadata = pd.read_csv(REFERENCE / "metadata.csv").assign(sex="female", age=64, bmi=27.5)
    metadata.to_csv(tmp_path / "metadata.csv", index=False)
    table, _ = read_ukbb_layout(REFERENCE, tmp_path / "metadata.csv", ColumnsConfig(), "raise", "decade")
    return table.iloc[0]


def test_reads_real_cine(reference_row):
    sa = reader_for(reference_row).short_axis(reference_row)
    assert sa.cine.shape == (256, 256, 12, 20)
    assert sa.spacing == pytest.approx((1.367188, 1.367188))
    assert (reference_row.label, sa.ed, sa.es) == (1, 18, 7)
    assert 2 <= sa.mid_slice() <= 8


@pytest.mark.parametrize(
    "name,shape",
    [
        ("cine", (1, 4, 64, 64)),
        ("volume", (1, 8, 64, 64)),
        ("slice", (1, 64, 64)),
        ("frame", (1, 64, 64)),
        ("edes", (3, 64, 64)),
    ],
)
def test_every_short_axis_view_on_real_data(make_cfg, reference_row, name, shape):
    image, masks = ViewBuilder(make_cfg(f"input={name}", "input.size=64").input)(reference_row)
    assert image.shape == shape
    if name == "edes":  # the crop is centred on the contoured LV
        assert masks[0, 24:40, 24:40].any()
