"""What the study recipes share: training runs from their config, scoring, seed aggregation, tables.

The studies (`recipes/diffusion_study.py`, `recipes/compare_vaes.py`,
`recipes/compare_objectives.py`) are short mains over these functions.
"""

from kgen.studies.runs import cached_measures, read_run, train_run
from kgen.studies.scoring import classifier_reference, conditional_quality, latent_walks, partial_denoising
from kgen.studies.tables import aggregate_seeds, markdown_table, measure_table, write_report

__all__ = ["aggregate_seeds", "cached_measures", "classifier_reference", "conditional_quality", "latent_walks",
           "markdown_table", "measure_table", "partial_denoising", "read_run", "train_run", "write_report"]
