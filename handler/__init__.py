"""Qwen on Function Compute: turn an FC event into question(s), ask Qwen, return the result as JSON."""
