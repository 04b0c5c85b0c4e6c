"""Sub-commands of `skill-engine` beside `serve`, one module each.

Each module has `register(commands)`: it adds its parser to the `argparse` sub-parsers and sets
`handler=<function(args) -> exit code>`; `cli.py` registers it with one line. Heavy imports (wasmtime, the
app) happen inside the handlers, so `--help` stays fast.
"""
