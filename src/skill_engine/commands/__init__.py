"""`skill-engine` sub-commands beyond `serve`, one module each (registered in cli.py)."""
