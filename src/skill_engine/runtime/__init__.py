"""The sandbox: wasmtime engine and limits, invocations, compilation, and per-version CSI bindings."""
