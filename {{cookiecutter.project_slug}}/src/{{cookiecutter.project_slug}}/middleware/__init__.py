"""Pure ASGI middleware: plain classes around `(scope, receive, send)`.

Starlette's request/response middleware base class costs throughput and breaks context variables.
"""
