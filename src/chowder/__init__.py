"""Chowder: a self-hostable control plane for OpenClaw agents."""

__version__ = "0.1.0"
