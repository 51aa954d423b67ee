"""Vertical federated modelling: shared pieces of the modelling components."""
