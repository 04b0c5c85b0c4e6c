"""ASGI middleware around the routes: telemetry, CORS, compression, decompression and authentication."""
