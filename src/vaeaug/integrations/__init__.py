"""Integrations with analysis frameworks (imported on use: coffea and dask stay optional).

* :mod:`~vaeaug.integrations.awkward`: candidates from awkward / NanoEvents arrays and back;
* :mod:`~vaeaug.integrations.coffea`: :class:`~vaeaug.integrations.coffea.Augment`, the coffea step;
* :mod:`~vaeaug.integrations.dask`: generation on a Dask cluster;
* :mod:`~vaeaug.integrations.cache`: models shipped to workers, loaded once per process.
"""
