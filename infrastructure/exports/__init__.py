"""Data export archives: the ZIP writer of the ArchiveWriter port."""
