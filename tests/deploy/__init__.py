"""Deployment: the container image, the Kubernetes manifests, compile-once, a fleet behind a load balancer."""
