"""The ``cio-relay`` command: one subcommand module per concern."""
