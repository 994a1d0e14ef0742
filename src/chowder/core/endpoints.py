"""Paths the control plane and the agent runtime agree on, on the listener only sandboxes reach."""

MODEL_PATH = "/model"
