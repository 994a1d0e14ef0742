"""JSON merge patch (RFC 7386), the one way partial config changes are expressed, and its inverse."""

from __future__ import annotations

import copy
from typing import Any


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """JSON merge patch (RFC 7386): objects merge recursively, `None` removes a key, the rest replaces."""
    result = copy.deepcopy(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge_patch(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def inverse_patch(before: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """The merge patch that undoes `patch` on `before`: only the keys the patch touched."""
    undo: dict[str, Any] = {}
    for key, value in patch.items():
        if key not in before:
            if value is not None:
                undo[key] = None
        elif isinstance(value, dict) and isinstance(before[key], dict):
            undo[key] = inverse_patch(before[key], value)
        else:
            undo[key] = copy.deepcopy(before[key])
    return undo


def diff_patch(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The merge patch that turns `before` into `after` (values that are `None` in `after` cannot be expressed)."""
    patch: dict[str, Any] = dict.fromkeys(before.keys() - after.keys())
    for key, value in after.items():
        if isinstance(value, dict) and isinstance(before.get(key), dict):
            if nested := diff_patch(before[key], value):
                patch[key] = nested
        elif key not in before or before[key] != value:
            patch[key] = copy.deepcopy(value)
    return patch
