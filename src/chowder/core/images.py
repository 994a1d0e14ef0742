"""What a gateway image for the docker provider holds, as the image builder (`runtime/openclaw/image.py`, behind
`chowder runtime image`) and the provider agree on it: the runtime cache's trees (`node`, `openclaw-<version>`…)
at `IMAGE_RUNTIME/<tree>`, listed in the image's `TREES_LABEL`."""

from __future__ import annotations

from pathlib import PurePosixPath

IMAGE_RUNTIME = PurePosixPath("/opt/chowder/runtime")
# The image's Node (the runtime cache's `node` tree), which runs the kubernetes provider's tools in a pod.
IMAGE_NODE = IMAGE_RUNTIME / "node" / "bin" / "node"
TREES_LABEL = "dev.chowder.runtime-trees"
DEFAULT_IMAGE = "chowder-gateway:local"
