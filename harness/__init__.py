"""What runs the program for tests, benches and operators without being part of it: the
Pulumi engine driver (engine, labctl: ./scripts/lab), the simulated Internet (sim:
./scripts/sim) and the staging stack filled in from it (staging)."""
