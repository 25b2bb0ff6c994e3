"""The HA agent of a mesh member (border router or node): a pure core (core.py), thin
adapters to the system (adapters.py), the loop that joins them (run.py), and the contract
with bgp4mesh (schema.py). Stdlib only: the image has no pip."""
