"""The HTTP server: health, /metrics, the JSON API and its OpenAPI document, and the public
status page."""
