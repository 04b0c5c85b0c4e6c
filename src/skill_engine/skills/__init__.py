"""Skill lifecycle: namespaces, registries, the store of known skills and the component cache."""
