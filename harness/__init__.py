"""The live harness: runs the Pulumi program against the real Docker engine without
the Pulumi CLI (a stand-in for the engine, used by the tests, bench and scripts/lab)."""
