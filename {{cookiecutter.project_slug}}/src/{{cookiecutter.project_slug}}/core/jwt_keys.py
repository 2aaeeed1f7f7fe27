"""Token signing algorithms and the check of an RS256 key pair, apart from `security` so that
settings can validate keys without importing the token and password libraries."""

from __future__ import annotations

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ALGORITHM = "HS256"
"""The default: signed and verified with SECRET_KEY."""
ASYMMETRIC_ALGORITHM = "RS256"
"""With JWT_PRIVATE_KEY/JWT_PUBLIC_KEY: other services verify with the public key alone."""
MIN_RSA_BITS = 2048


def check_rsa_key_pair(private_pem: str, public_pem: str) -> None:
    """Raise `ValueError` naming what is wrong with an RS256 key pair."""
    try:
        private = serialization.load_pem_private_key(private_pem.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError("JWT_PRIVATE_KEY is not an unencrypted PEM private key") from None
    try:
        public = serialization.load_pem_public_key(public_pem.encode())
    except (ValueError, UnsupportedAlgorithm):
        raise ValueError("JWT_PUBLIC_KEY is not a PEM public key") from None
    if not isinstance(private, rsa.RSAPrivateKey) or not isinstance(public, rsa.RSAPublicKey):
        raise ValueError("JWT_PRIVATE_KEY and JWT_PUBLIC_KEY must be RSA keys (RS256)")
    if private.key_size < MIN_RSA_BITS:
        raise ValueError(f"JWT_PRIVATE_KEY must be at least {MIN_RSA_BITS} bits")
    if private.public_key().public_numbers() != public.public_numbers():
        raise ValueError("JWT_PUBLIC_KEY is not the public half of JWT_PRIVATE_KEY")
