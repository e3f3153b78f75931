"""API keys. Only a keyed hash of each key is stored; the key itself is shown once."""

import contextlib
import hashlib
import hmac
import secrets

import peewee

from .base import BaseModel, utcnow

SCOPES = ("read", "comment", "write", "admin")
#: What each scope grants: writers and commenters may read, admins may do everything.
GRANTS = {
    "read": {"read"},
    "comment": {"read", "comment"},
    "write": {"read", "write"},
    "admin": set(SCOPES),
}
KEY_PREFIX = "nd_"


def hash_key(token, pepper):
    """HMAC-SHA256 of a key with ``pepper`` (bytes): fast, and safe for keys with 256 bits of
    entropy."""
    return hmac.new(pepper, token.encode(), hashlib.sha256).hexdigest()


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

    def grants(self, scope):
        """Whether this key may do what ``scope`` allows."""
        return any(scope in GRANTS[own] for own in self.scope_list if own in GRANTS)

    @classmethod
    def issue(cls, name, scopes, pepper):
        """Create a key; returns ``(ApiKey, token)``. The token is not stored anywhere."""
        unknown = set(scopes) - set(SCOPES)
        if unknown or not scopes:
            raise ValueError(f"scopes must be some of {', '.join(SCOPES)}")
        token = KEY_PREFIX + secrets.token_urlsafe(32)
        key = cls.create(
            name=name,
            prefix=token[:10],
            key_hash=hash_key(token, pepper),
            scopes=",".join(s for s in SCOPES if s in scopes),
        )
        return key, token

    @classmethod
    def find(cls, token, pepper, legacy_peppers=()):
        """The live key whose secret is ``token``, or None (unknown or revoked).

        A key stored under one of ``legacy_peppers`` (by an earlier version) is found too, and
        stored again under ``pepper``.
        """
        digest = hash_key(token, pepper)
        key = cls.get_or_none(cls.key_hash == digest)
        if key is None:
            for legacy in legacy_peppers:
                key = cls.get_or_none(cls.key_hash == hash_key(token, legacy))
                if key is not None:
                    # Best effort, as a read must work where nothing can be written: the key
                    # is stored again at a later request.
                    with contextlib.suppress(peewee.DatabaseError):
                        cls.update(key_hash=digest).where(cls.id == key.id).execute()
                    key.key_hash = digest
                    break
        if key is None or key.revoked_at is not None:
            return None
        # The lookup matched on the hash already; compare again in constant time regardless.
        return key if hmac.compare_digest(key.key_hash, digest) else None


class SpentIdempotencyKey(BaseModel):
    """The ``Idempotency-Key`` of a comment or webhook (``kind``) deleted since it was made
    (``resource_id``), for the API key that sent it: a retry of its request must not make
    another, as a retry while it lives gets the first answer."""

    api_key_id = peewee.BigIntegerField()
    kind = peewee.CharField(max_length=20)
    idempotency_key = peewee.CharField(max_length=255)
    resource_id = peewee.BigIntegerField()
    deleted_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        table_name = "spent_idempotency_key"
        primary_key = peewee.CompositeKey("api_key_id", "kind", "idempotency_key")

    @classmethod
    def spend(cls, kind, deleted):
        """Keep the key of ``deleted`` (a comment or webhook deleted in this transaction)."""
        if deleted.idempotency_key is not None and deleted.api_key_id is not None:
            cls.insert(
                api_key_id=deleted.api_key_id,
                kind=kind,
                idempotency_key=deleted.idempotency_key,
                resource_id=deleted.id,
            ).on_conflict_ignore().execute()

    @classmethod
    def deleted(cls, kind, api_key_id, idempotency_key):
        """The id of the ``kind`` the key made and was deleted since, or None."""
        return (
            cls.select(cls.resource_id)
            .where(
                (cls.api_key_id == api_key_id)
                & (cls.kind == kind)
                & (cls.idempotency_key == idempotency_key)
            )
            .scalar()
        )
