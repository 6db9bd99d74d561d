"""The HTTP listener: WebSockets (RFC 7395, native), BOSH (XEP-0206), XEP-0156 host-meta."""
