"""Test harness: build real skills with the SDK, run real servers on loopback."""
