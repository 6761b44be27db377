"""What the proxy tells its operator: the access log line, Prometheus metrics, usage, traces."""
