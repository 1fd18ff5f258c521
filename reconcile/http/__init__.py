"""The HTTP layer every HTTP source and target shares, with no vendor's words in it: the client, its
retry/pacing transport, errors raised as the caller's own class, and auth (static and OAuth 2.0).
"""

from reconcile.http.auth import (
    ClientSecret,
    HeaderAuth,
    JwtBearer,
    OAuthToken,
    PrivateKeyJwt,
    SigningKey,
    basic,
    bearer,
    ssws,
)
from reconcile.http.client import HttpClient
from reconcile.http.errors import ErrorFactory, ErrorKinds, error_for, fail, raise_for, request_id, safe_url
from reconcile.http.gather import all_of
from reconcile.http.pacing import Backoff, Clock, RateGate, RateHeaders, seconds_until
from reconcile.http.transport import IDEMPOTENT, Lanes, RetryPolicy, RetryTransport

__all__ = ["IDEMPOTENT", "Backoff", "ClientSecret", "Clock", "ErrorFactory", "ErrorKinds", "HeaderAuth",
           "HttpClient", "JwtBearer", "Lanes", "OAuthToken", "PrivateKeyJwt", "RateGate", "RateHeaders",
           "RetryPolicy", "RetryTransport", "SigningKey", "all_of", "basic", "bearer", "error_for", "fail", "raise_for",
           "request_id", "safe_url", "seconds_until", "ssws"]
