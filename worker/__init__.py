"""cio-relay: forwards first-party events from a Redis stream to the Customer.io Track API."""

__version__ = "0.1.0"
