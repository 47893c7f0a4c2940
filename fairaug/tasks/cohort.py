"""task=cohort: inspect any `data=` source before training on it.

Writes cohort.csv (one row per subject: labels, attributes, frames, LV volumes, EF and
mass measured from its masks, voxel spacing, image shape, source files), cohort.md and
plots of the subgroup counts and of EF and EDV per label and sex, and skipped.csv with
every subject the source or the measurement left out and why.
"""

from __future__ import annotations

import logging

import pandas as pd

from fairaug.data.cohort import RECORDED, recorded_attributes, settle_problems
from fairaug.data.cohort_summary import format_cells, plot_counts, plot_measurements, summary_markdown
from fairaug.data.measurements import MEASURES_COLUMNS, geometry, lv_measurements
from fairaug.data.readers import reader_for
from fairaug.data.sources import load_cohort
from fairaug.errors import DataError
from fairaug.io import write_csv, write_text
from fairaug.processes import worker_pool
from fairaug.runtime import start_run

log = logging.getLogger(__name__)

COHORT_COLUMNS = [
    "subject_id",
    "label",
    "diagnosis",
    *RECORDED,
    "ed_frame",
    "es_frame",
    *MEASURES_COLUMNS,
    "spacing_x_mm",
    "spacing_y_mm",
    "slice_gap_mm",
    "shape",
    "image_path",
    "ed_mask_path",
    "es_mask_path",
    "la_path",
]


def measure(row: pd.Series) -> tuple[str, dict | None, str | None]:
    """(subject, measurements, error) of one subject, read through its reader."""
    try:
        sa = reader_for(row).short_axis(row)
        return row.subject_id, {**lv_measurements(sa), **geometry(sa), "ed_frame": sa.ed, "es_frame": sa.es}, None
    except DataError as error:
        return row.subject_id, None, str(error).removeprefix(f"subject {row.subject_id}: ")
    except Exception as error:  # noqa: BLE001 - reported with the subject that caused it
        return row.subject_id, None, f"{type(error).__name__}: {error}"


def measure_all(cohort: pd.DataFrame, workers: int) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    rows = [row for _, row in cohort.iterrows()]
    if workers > 1 and len(rows) > 1:
        with worker_pool(workers) as pool:
            results = list(pool.map(measure, rows, chunksize=4))
    else:
        results = [measure(row) for row in rows]
    measured = {subject: values for subject, values, error in results if error is None}
    problems = [(subject, error) for subject, _, error in results if error is not None]
    values = pd.DataFrame.from_dict(measured, orient="index")
    table = cohort[cohort.subject_id.isin(measured)].drop(columns=["ed_frame", "es_frame"])
    return table.join(values, on="subject_id").reset_index(drop=True), problems


def run(cfg) -> dict:
    folder = start_run(cfg)
    output_dir = folder.path
    folder.write_config(cfg)
    cohort, skipped = load_cohort(cfg.data)
    log.info("Measuring %d subjects of data=%s", len(cohort), cfg.data.name)
    table, problems = measure_all(cohort, int(cfg.input.workers))
    settle_problems(problems, cfg.data.on_error, "measuring the cohort")
    if table.empty:
        raise DataError("no subject of the cohort could be measured")
    skipped = pd.DataFrame([*skipped, *problems], columns=["subject_id", "reason"])
    attributes = recorded_attributes(table)
    write_csv(format_cells(table)[COHORT_COLUMNS], output_dir / "cohort.csv")
    write_csv(skipped, folder.skipped)
    write_text(summary_markdown(table, skipped, f"Cohort: data={cfg.data.name}", attributes), output_dir / "cohort.md")
    plot_counts(table, attributes, output_dir / "cohort_counts.png")
    plot_measurements(table, "sex" in attributes, output_dir / "cohort_ef_edv.png")
    log.info("Cohort of %d subjects (%d left out) written to %s", len(table), len(skipped), output_dir / "cohort.md")
    return {"n_subjects": len(table), "n_skipped": len(skipped), "attributes": attributes}
