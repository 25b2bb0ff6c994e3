"""The control-plane exporter: Netmaker's view of the mesh members and the broker's $SYS
counters as Prometheus metrics. A pure core (core.py), thin adapters to Netmaker's API and
mosquitto_sub (adapters.py), the HTTP server that joins them (run.py), and the contract with
bgp4mesh (schema.py). Stdlib only: the monitoring image has no pip."""
