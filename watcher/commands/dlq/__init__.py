"""``watcher dlq``: inspect the dead-letter queue (``stats``, ``list``), send messages back
(``replay`` one by one with filters, ``redrive`` all at once through SQS), archive and empty it
(``export``, ``purge``). ``messages`` reads the DLQ; one module per action."""
