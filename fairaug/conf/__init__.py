"""Hydra config groups, shipped as package data so that an installed fairaug finds them."""
