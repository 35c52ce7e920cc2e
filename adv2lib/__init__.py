"""adv2lib: a reproduction of ADV2 ("Interpretable Deep Learning under Fire",
Zhang et al., USENIX Security 2020) as a small, tested PyTorch library."""

__version__ = "0.1.0"
