"""Job handlers: the registry, the contract a handler implements, and one module per task type."""
