"""Quality control before anything else: scanpy's per-cell QC metrics on the raw counts (:mod:`.metrics`),
Scrublet doublets per sample (:mod:`.doublets`), suggested thresholds per sample and applying them
(:mod:`.thresholds`, which documents the rule), and the figures (:mod:`.figures`). The workflow that runs them
in order, records and writes is :func:`scelmo_desktop.core.workflows.qc.run_qc`."""
