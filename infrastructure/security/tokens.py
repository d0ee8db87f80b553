"""JWT access tokens (HS256 or RS256) and opaque refresh tokens."""

from __future__ import annotations

import secrets
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from domain.errors import Unauthenticated
from domain.users import Principal, Role, refresh_token_hash
from infrastructure.settings import Settings

VERIFIED_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: str
    expires_in: int
    expires_at: datetime


class TokenService:
    """Issues and verifies access tokens; verification needs no database round trip."""

    def __init__(
        self,
        *,
        algorithm: str,
        signing_key: str,
        verifying_key: str,
        issuer: str,
        access_ttl: int,
        refresh_ttl: int,
    ) -> None:
        self.algorithm = algorithm
        self._signing_key = signing_key
        self._verifying_key = verifying_key
        self.issuer = issuer
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self._verified: OrderedDict[str, tuple[Principal, datetime]] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenService:
        if settings.jwt_algorithm == "RS256":
            signing, verifying = settings.jwt_private_key, settings.jwt_public_key
        else:
            signing = verifying = settings.effective_jwt_secret
        return cls(
            algorithm=settings.jwt_algorithm,
            signing_key=signing,
            verifying_key=verifying,
            issuer=settings.jwt_issuer,
            access_ttl=settings.access_token_ttl_seconds,
            refresh_ttl=settings.refresh_token_ttl_seconds,
        )

    def issue_access(
        self,
        user_id: uuid.UUID,
        role: Role,
        *,
        session_id: uuid.UUID | None = None,
        session_version: int = 0,
        now: datetime | None = None,
    ) -> AccessToken:
        """`session_id`: the refresh family it belongs to (claim `sid`); `session_version`: the
        user's at issue (claim `sv`). The access gate compares them with the user's AccessState."""
        issued = now or datetime.now(UTC)
        expires = issued + timedelta(seconds=self.access_ttl)
        claims: dict[str, object] = {
            "sub": str(user_id),
            "role": role.value,
            "iat": int(issued.timestamp()),
            "exp": int(expires.timestamp()),
            "iss": self.issuer,
            "typ": "access",
            "sv": session_version,
        }
        if session_id is not None:
            claims["sid"] = str(session_id)
        token = jwt.encode(claims, self._signing_key, algorithm=self.algorithm)
        return AccessToken(token, self.access_ttl, expires)

    def verify_access(self, token: str) -> tuple[Principal, datetime]:
        """The principal and the token's expiry; raises Unauthenticated on any defect.

        A client sends the same token with every request until it expires: a verified
        token is remembered (bounded LRU) so the signature is checked once, not per request.
        """
        known = self._verified.get(token)
        if known is not None:
            if known[1] > datetime.now(UTC):
                self._verified.move_to_end(token)
                return known
            del self._verified[token]
        verified = self._verify(token)
        self._verified[token] = verified
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return verified

    def _verify(self, token: str) -> tuple[Principal, datetime]:
        try:
            claims = jwt.decode(
                token,
                self._verifying_key,
                algorithms=[self.algorithm],
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub"]},
            )
            if claims.get("typ") != "access":
                raise Unauthenticated("The token is not an access token.")
            version = claims.get("sv", 0)  # tokens issued before versions existed count as version 0
            if not isinstance(version, int) or isinstance(version, bool):
                raise Unauthenticated("The access token is invalid.")
            session = claims.get("sid")
            principal = Principal(
                uuid.UUID(str(claims["sub"])),
                Role(claims.get("role", "user")),
                session_id=uuid.UUID(session) if isinstance(session, str) else None,
                session_version=version,
            )
            return principal, datetime.fromtimestamp(int(claims["exp"]), UTC)
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("The access token has expired.") from exc
        except (jwt.PyJWTError, ValueError, KeyError) as exc:
            raise Unauthenticated("The access token is invalid.") from exc

    @staticmethod
    def new_refresh_token() -> tuple[str, str]:
        """A random refresh token and the hash we store (never the token itself)."""
        token = secrets.token_urlsafe(48)
        return token, refresh_token_hash(token)
