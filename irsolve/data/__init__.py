"""Embedded data: PDE generators and a reader for The Well's HDF5 layout."""

__all__: list[str] = []
