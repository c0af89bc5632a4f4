"""The stack model, its derivations and the Pulumi components (import as `hardened_do.components`)."""

if __name__ == "components":
    # A checkout has this folder at the top level too; code loaded under a
    # second name would have its own ConfigError, StackConfig and caches.
    raise ImportError("import hardened_do.components, not components (one import name for the product code)")
