"""openkvs: a self-hosted media processing service speaking the KVS 2017-01-01 API."""

__version__ = "0.1.0"
