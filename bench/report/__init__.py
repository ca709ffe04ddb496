"""Reports: a suite's page (``page`` and its sections), the compare page (``compare_page``), their context, tables,
figures and findings. The pages take DataFrames; only ``command`` (``python -m bench.report``) opens a store."""
