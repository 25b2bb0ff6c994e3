"""The looking glass of a border router: a read-only HTTP service that runs `birdc -r` for
an allow-list of queries. A pure core (core.py) decides what a request may run, an adapter
runs birdc within bounds (birdc.py), the HTTP server joins them (server.py), and the config
is the contract with bgp4mesh (schema.py). Stdlib only: the image has no pip."""
