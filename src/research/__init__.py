"""Reproducible study of a B2B customer service quality supervision model.

Modules, one per concern: ``config`` (study configuration and codebook), ``paths``, ``io`` (atomic
writes), ``data`` (raw data loading and validation), ``synthetic`` (demo data), ``experts`` (Kendall's W,
weights), ``efa`` (exploratory factor analysis), ``survey`` (group comparison), ``model`` (supervision
model), ``monitoring`` (control charts), ``pipeline`` and ``report`` (papermill runs, HTML), ``plots``.
"""

__version__ = "0.1.0"
