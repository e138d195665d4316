"""The web console (``cio-relay console``): server-rendered pages over the relay's own stages."""
