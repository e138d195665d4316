"""The HTTP collector: SDKs and browsers send events here, it adds them to the inbox."""
