"""The audit trail: append-only, hash-chained records of security-relevant actions."""
