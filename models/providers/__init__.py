"""One module per provider, each with ``create(spec: ModelSpec) -> Provider``."""
