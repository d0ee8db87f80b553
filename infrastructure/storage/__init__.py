"""File storage backends implementing `domain.ports.ObjectStorage`: a local directory and S3."""

from infrastructure.storage.factory import open_storage
from infrastructure.storage.local import LocalStorage
from infrastructure.storage.s3 import S3Storage

__all__ = ["LocalStorage", "S3Storage", "open_storage"]
