//! Real-server health checks (keepalived TCP_CHECK, HTTP_GET, MISC_CHECK).
