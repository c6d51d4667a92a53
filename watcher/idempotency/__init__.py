"""Which units of work already ran: the idempotency store. ``store`` is what dispatch uses (claim
before a unit runs, complete or release after, leases renewed while it runs); ``sqlite`` and
``dynamodb`` are the two backends, chosen by the ``idempotency`` section of the configuration."""
