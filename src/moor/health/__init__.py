"""Pure health rules: a live object in, Healthy / Progressing / Failed with one sentence out.

Waiting for a set of objects to become healthy reads the live cache: that is `moor.health.wait`,
which this package does not import.
"""

from moor.health.rules import RULES, Rule, assess_health, describe
from moor.health.status import HealthState, HealthStatus, aggregate, failures

__all__ = ["RULES", "HealthState", "HealthStatus", "Rule", "aggregate", "assess_health", "describe", "failures"]
