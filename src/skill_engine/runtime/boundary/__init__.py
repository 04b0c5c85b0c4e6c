"""The engine's own path across the wasm component boundary (fixes 5 and 6 of `runtime/wasmtime_fixes.py`).

`convert` builds converters once per value type (`values` for leaves, `variants` for variants, options
and results); `calls` keeps them per function type for host imports and export calls.
"""
