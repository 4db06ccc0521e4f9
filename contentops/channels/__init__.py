"""Channel adapters: one module per kind, listed in registry.py."""
