"""Data sets the lessons use, all generated here from a seed or shipped inside a package:
no lesson needs a download (real MNIST is an explicit opt-in).

- ``odeteach.data.digits`` / ``odeteach.data.mnist``: images for the ODE-Net classifier (lesson 4).
- ``odeteach.data.spirals``: irregularly sampled noisy spirals for the latent ODE (lesson 5).
- ``odeteach.data.densities``: 2-D target densities for continuous normalizing flows (lesson 6).
"""
