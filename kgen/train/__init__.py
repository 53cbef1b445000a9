"""Training commands: `kgen.train {dcgan,vae,ddpm,classifier,distill}`, one module per model family.

Each module holds its family's config (a `TrainingRunOptions` subclass: the
shared run flags plus its own) and a `main(argv)` that builds the networks
and the trainer, and trains them into a locked, resumable run folder. The
recipes in `recipes/` are thin scripts over these.
"""
