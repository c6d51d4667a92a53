"""The configuration: ``schema`` (frozen dataclasses, imports nothing of ours), ``loader`` (YAML,
``WATCHER_*`` overrides, references, validation), ``fields`` (typed readers with did-you-mean hints,
used by the loader and by every handler's options), ``refs`` and ``secrets`` (``${...}`` references).

Nothing is imported here, so that importing ``watcher.config.schema`` costs only the schema."""
