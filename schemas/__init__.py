"""Marshmallow schemas: validation, serialization and the OpenAPI document. No Flask here."""
