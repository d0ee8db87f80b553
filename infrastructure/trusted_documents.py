"""Reads the trusted-documents manifest (TRUSTED_DOCUMENTS_MANIFEST) at start; a bad one stops the start."""

from __future__ import annotations

from pathlib import Path

from domain.persisted_documents import NO_TRUSTED_DOCUMENTS, ManifestError, TrustedDocuments, trusted_documents
from infrastructure.json_input import JsonInputError, loads

#: A manifest is read whole at start; a bigger file is a mistake (or not a manifest).
MAX_MANIFEST_BYTES = 64 * 1024 * 1024


def read_manifest(path: Path) -> object:
    """The decoded JSON of a manifest file, or ManifestError naming the file and the problem."""
    try:
        size = path.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            raise ManifestError(f"{path}: larger than {MAX_MANIFEST_BYTES} bytes")
        return loads(path.read_bytes())
    except OSError as exc:
        raise ManifestError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    except JsonInputError as exc:
        raise ManifestError(f"{path}: not valid JSON ({exc})") from exc


def load_trusted_documents(path: Path | None) -> TrustedDocuments:
    """The manifest's documents (none when no path is configured); ManifestError says why it cannot be used."""
    if path is None:
        return NO_TRUSTED_DOCUMENTS
    data = read_manifest(path)
    try:
        return trusted_documents(data)
    except ManifestError as exc:
        raise ManifestError(f"{path}: {exc}") from exc
