"""Images: a content-addressed store and the built-in offline ``lab`` image."""

from engine.images.reference import Reference, normalize_reference, parse_reference
from engine.images.store import Image, ImageStore

__all__ = ["Image", "ImageStore", "Reference", "normalize_reference", "parse_reference"]
