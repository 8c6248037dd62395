"""The ack contract, written once and run on every runner: the harness, the pull worker, HTTP."""
