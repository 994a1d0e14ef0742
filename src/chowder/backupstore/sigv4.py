"""AWS Signature Version 4 for S3 requests (path-style), the one scheme every S3-compatible server takes. Written
here on httpx rather than taken from boto3: botocore pins python-dateutil below 3, which the pinned kubernetes
client requires, so the two cannot be installed together."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from urllib.parse import quote

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signed_headers(
    method: str,
    host: str,
    path: str,
    query: dict[str, str],
    payload_sha256: str,
    *,
    access_key: str,
    secret_key: str,
    region: str,
    now: datetime,
) -> dict[str, str]:
    """The headers that authenticate one request: `x-amz-date`, `x-amz-content-sha256` and `Authorization`.
    `path` is the request's path as sent (already percent-encoded), `query` its parameters."""
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    canonical_query = query_string(query)
    headers = {"host": host, "x-amz-content-sha256": payload_sha256, "x-amz-date": amz_date}
    names = ";".join(sorted(headers))
    canonical = "\n".join(
        [
            method,
            path,
            canonical_query,
            "".join(f"{name}:{headers[name]}\n" for name in sorted(headers)),
            names,
            payload_sha256,
        ]
    )
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret_key}".encode(), day), region), "s3"), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    authorization = f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={names}, Signature={signature}"
    return {"x-amz-date": amz_date, "x-amz-content-sha256": payload_sha256, "Authorization": authorization}


def object_path(bucket: str, key: str) -> str:
    """Path-style: `/<bucket>/<key>`, each segment percent-encoded once (as S3 canonicalizes it)."""
    return "/" + quote(bucket, safe="") + "/" + quote(key, safe="/-_.~")


def query_string(query: dict[str, str]) -> str:
    """The query as SigV4 canonicalizes it, which is also how it is sent (so the two cannot differ)."""
    return "&".join(f"{quote(name, safe='-_.~')}={quote(value, safe='-_.~')}" for name, value in sorted(query.items()))
