"""Moor: a GitOps operator. Git is the truth; the cluster follows."""

__version__ = "0.1.0"
