"""Files wire models."""

from __future__ import annotations

from pydantic import BaseModel

from chowder.schemas.common import Timestamp


class FileEntry(BaseModel):
    name: str
    path: str
    is_dir: bool
    size: int
    mod_time: Timestamp
    permissions: str


class DirectoryListing(BaseModel):
    path: str
    entries: list[FileEntry]


class FileContent(BaseModel):
    path: str
    content: str


class FileMove(BaseModel):
    source: str
    destination: str


class DirectoryCreate(BaseModel):
    path: str
