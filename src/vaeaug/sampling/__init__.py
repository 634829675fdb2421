"""Sampling: from a trained model to generated 4-momenta.

* :mod:`~vaeaug.sampling.noise`: seeds and counter-based random streams;
* :mod:`~vaeaug.sampling.engine`: seeded noise blocks decoded into standardized features;
* :mod:`~vaeaug.sampling.streaming`: the bounded-memory pipeline (chunks, ROOT output);
* :mod:`~vaeaug.sampling.candidates`: :class:`Candidates`, the generated sample.
"""
