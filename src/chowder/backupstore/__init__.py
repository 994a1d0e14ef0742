"""Where backup archives are kept (the `BackupStore` port): files under the data dir, or an S3-compatible bucket."""

from __future__ import annotations

from chowder.backupstore.local import LocalBackupStore
from chowder.backupstore.s3 import S3BackupStore
from chowder.core.settings import Settings
from chowder.domain.ports.backups import BackupStore


def make_store(settings: Settings) -> BackupStore:
    """The store the settings name; ValueError when `s3` lacks its bucket or credentials, or has a bad endpoint."""
    if settings.backup_store == "local":
        return LocalBackupStore((settings.backup_dir or settings.data_dir / "backups").resolve())
    secret = settings.backup_s3_secret_access_key
    if not settings.backup_s3_bucket or not settings.backup_s3_access_key_id or secret is None:
        raise ValueError(
            "CHOWDER_BACKUP_STORE=s3 needs CHOWDER_BACKUP_S3_BUCKET, CHOWDER_BACKUP_S3_ACCESS_KEY_ID and "
            "CHOWDER_BACKUP_S3_SECRET_ACCESS_KEY."
        )
    region = settings.backup_s3_region
    endpoint = settings.backup_s3_endpoint or f"https://s3.{region}.amazonaws.com"
    return S3BackupStore(
        endpoint,
        settings.backup_s3_bucket,
        settings.backup_s3_prefix,
        region,
        settings.backup_s3_access_key_id,
        secret.get_secret_value(),
    )
