"""The bgp4mesh member exporter: what no standard exporter gives per mesh member (Netmaker
CE has no metrics). A pure core (core.py: `wg show all dump` and the HA agent's state file
to Prometheus text) and a small HTTP server around it (serve.py). Stdlib only, like the
agent: the image has no pip, and the text format is a few lines of code."""
