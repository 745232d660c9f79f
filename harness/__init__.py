"""Fault harness: drives the real `sidecar serve` and `sidecar worker` through faults and fuzzed webhooks.

It uses only the command line, HTTP and environment variables of the service, never its modules, so
the package's internals can move without breaking it. Run `python -m harness --help`.
"""
