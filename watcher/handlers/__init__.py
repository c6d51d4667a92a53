"""Handlers: what runs one unit of work. ``base`` says what a handler is, ``registry`` maps a route's
``handler.type`` to its class (imported on first use, so a configuration without container routes
never imports the Docker SDK), ``log`` and ``python`` are small; ``container`` and ``workflow`` are
packages of their own."""
