"""Small and fast model settings: the tests check behaviour, the benchmarks check quality."""

TINY_VAE = {"latent_dim": 4, "hidden": (32, 32), "prior_transforms": 2, "prior_hidden": (16, 16)}
TINY_TRAIN = {"epochs": 8, "batch_size": 256, "patience": 5, "kl_warmup_epochs": 2}
#: The same for the command line.
TINY_CLI = [
    "--latent-dim",
    "4",
    "--hidden",
    "32",
    "32",
    "--epochs",
    "6",
    "--patience",
    "3",
    "--device",
    "cpu",
    "-q",
]
