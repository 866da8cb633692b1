"""The HTTP server: health, /metrics, the JSON API and its OpenAPI document, and the public
status page. It is handed the running monitor as ``services.Services`` and never imports it.

``server`` mounts everything; ``openapi`` publishes ``api``'s route table, whose ``handlers``
answer from ``views``, through ``plumbing`` (errors, token, bodies), with ``models``.
"""
