"""Sampling: from a trained model to generated 4-momenta.

* :mod:`~vaeaug.sampling.protocol`: :class:`SamplingModel`, what sampling reads of a model;
* :mod:`~vaeaug.sampling.decode`: the one path noise -> features -> 4-momenta -> support
  check -> redraws;
* :mod:`~vaeaug.noise`: seeds and counter-based random streams;
* :mod:`~vaeaug.sampling.engine`: seeded noise blocks decoded into standardized features;
* :mod:`~vaeaug.sampling.streaming`: the bounded-memory pipeline (chunks, ROOT output);
* :mod:`~vaeaug.sampling.options`: :class:`SamplingOptions`, the settings of a run;
* :mod:`~vaeaug.sampling.sizes`: every batch size of the path.

Generated candidates are :class:`vaeaug.io.Candidates`, as read ones are.
"""
