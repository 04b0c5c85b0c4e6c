"""The code sandbox behind the `execute_python` native tool (docs/agents.md).

`build` turns the guest shipped in `guest/` into a component (componentize-py, cached by source hash),
`executor` runs programs in fresh instances of it under their own limits, `tool` is the native tool.
"""
