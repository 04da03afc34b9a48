"""Scale-out: several `moor run --replicas` processes share the work (docs/scale-out.md).

`assignment` (pure) maps buckets onto members by consistent hashing with bounded loads; `membership`
follows the members' Leases; `shard` says which buckets this member may reconcile now; `fence` checks
every write against it.
"""
