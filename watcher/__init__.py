"""watcher: an SQS-driven S3 file-watcher daemon."""

__version__ = "0.1.0"
