"""Sub-commands of `skill-engine` besides `serve`, one module each."""
