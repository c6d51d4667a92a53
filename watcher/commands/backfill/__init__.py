"""``watcher backfill``: existing objects of a prefix put through the routes as if they had just been
written: ``listing`` streams them, ``events`` builds the S3 notifications S3 would have sent,
``enqueue`` sends them to the queue (or ``direct`` runs them in-process), ``checkpoint`` lets a
stopped backfill resume, ``command`` ties them together."""
