"""loaphuong: self-hosted smart public address for Vietnamese wards."""

__version__ = "0.1.0"
