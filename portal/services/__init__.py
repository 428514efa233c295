"""The management plane's service layer: one function per change, shared by the HTML pages, the
management REST API and the CLI. Each takes the acting `Principal`, checks what it may touch,
writes through `gateway.store` and records an audit event."""
