"""Operations: /health for load balancers and /metrics for Prometheus."""
