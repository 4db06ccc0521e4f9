"""Channel adapters: one module per kind, discovered by the registry."""
