"""The workflow stage: per-event toggles, URL trigger paths and server-side callbacks."""
