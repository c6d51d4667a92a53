"""The long-running SQS worker: pollers, capacity, heartbeat, acknowledgements, shutdown."""
