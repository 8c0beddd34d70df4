"""``flytekit.models.core``: ``types.BlobType``."""
