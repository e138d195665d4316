"""One module per console page, each exposing ``routes``."""
