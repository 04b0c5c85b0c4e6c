"""Skill Engine: a production runtime for AI skills compiled to WebAssembly components."""

__version__ = "0.1.0"
