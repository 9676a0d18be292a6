"""The keys of the proxy end-to-end tests (tests/test_proxy_e2e.py), without a database.

A proxy started with ``general_settings: custom_auth: tests.proxy_auth.user_api_key_auth``
awaits ``user_api_key_auth(request=..., api_key=...)`` for every request and takes the
``UserAPIKeyAuth`` it returns as the key's record: its rpm/tpm limits are what the rate-limit
callbacks enforce. The keys and their fields come from ``PROXY_E2E_KEYS``, a JSON object of
bearer token -> ``UserAPIKeyAuth`` fields (``{"sk-a": {"rpm_limit": 2}}``), set by the test
for the proxy processes it starts. An unknown token is refused (401).
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict

from fastapi import HTTPException, Request
from litellm.proxy._types import UserAPIKeyAuth

KEYS_VARIABLE = "PROXY_E2E_KEYS"

_keys: Dict[str, Dict[str, Any]] = json.loads(os.environ.get(KEYS_VARIABLE) or "{}")


async def user_api_key_auth(request: Request, api_key: str) -> UserAPIKeyAuth:
    token = api_key.removeprefix("Bearer ").strip()
    fields = _keys.get(token)
    if fields is None:
        raise HTTPException(status_code=401, detail="unknown key")
    # The token is the key, as a virtual key is (UserAPIKeyAuth stores its sha256).
    return UserAPIKeyAuth(api_key=token, **fields)
