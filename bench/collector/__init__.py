"""The collector benchmark (``python -m bench.collector``, ``make bench-collector``).

HTTP requests in, inbox entries out: requests/s for single events, events/s in batches of
100, acknowledgement latency at a fixed offered rate, RSS over a soak, and end to end
through the relay to the emulator; every process real, the figures written as JSON.
"""
