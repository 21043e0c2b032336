"""Curation: turn attempts into verdicts (execute), verdicts into a data set (select), and the
data set into publishable files with a dataset card (export).

Stage functions for ``selfalign generate``: :func:`selfalign.curate.execute.run_execute`,
:func:`selfalign.curate.select.run_select` and :func:`selfalign.curate.export.run_export`.
Importing this package is cheap: the stage modules import heavy dependencies where used.
"""
