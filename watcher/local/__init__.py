"""Local stand-ins for AWS used by the demo and the tests: an embedded LocalStack."""
