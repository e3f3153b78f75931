"""API keys. Only a keyed hash of each key is stored."""

import peewee

from .base import BaseModel, utcnow

SCOPES = ("read", "comment", "write", "admin")


class ApiKey(BaseModel):
    """An API key: its name, scopes and the hash of its secret."""

    id = peewee.AutoField()
    name = peewee.CharField(max_length=100)
    #: The first characters of the key, shown in listings so a person can tell keys apart.
    prefix = peewee.CharField(max_length=16)
    key_hash = peewee.CharField(max_length=128, unique=True)
    #: Comma-separated scopes, for example ``read,comment``.
    scopes = peewee.CharField(max_length=100)
    created_at = peewee.DateTimeField(default=utcnow)
    last_used_at = peewee.DateTimeField(null=True)
    revoked_at = peewee.DateTimeField(null=True)

    @property
    def scope_list(self):
        return [scope for scope in self.scopes.split(",") if scope]
