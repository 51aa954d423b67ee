"""Cryptographic building blocks of the federated engine."""
