"""Operations: /health for load balancers, /health/workers for monitors, /metrics for Prometheus."""
