"""Bootstrapping a cluster from Git: Moor installed, its own manifests committed to the repository, and
the GitRepository and Sync that keep that path of the repository (Moor itself included) in sync."""
