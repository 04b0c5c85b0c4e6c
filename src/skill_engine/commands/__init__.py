"""Sub-commands of `skill-engine` beside `serve`, one module each."""
