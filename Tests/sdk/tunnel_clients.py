"""Python's HTTP clients through the broker as their HTTPS proxy (TLS interception), in their default
https configuration, changed only by proxy and CA settings (issue 12). The providers' own SDKs are
in provider_sdks.py (issue 30).

Run by Tests/sharebrokerTests/SDKTunnelTests.swift against `sharebroker serve --sandbox`, with
BROKER (http://127.0.0.1:PORT), CA (the broker's CA certificate) and the sandbox's tokens in the
environment. Each check asserts what arrived."""

import json
import os
import ssl
import sys
import urllib.parse

import httpx
import requests

BROKER = os.environ["BROKER"]
CA = os.environ["CA"]
SHARE_TOKEN = os.environ["SHARE_TOKEN"]
GRANTS_TOKEN = os.environ["GRANTS_TOKEN"]
COMPLIANCE_TOKEN = os.environ["COMPLIANCE_TOKEN"]
SUBJECT = "sdk-u1"
authority = urllib.parse.urlsplit(BROKER).netloc
PROXY = f"http://demo-app:{SHARE_TOKEN}@{authority}"


def api(method, path, token, body=None):
    """The broker's own API, directly (no proxy)."""
    response = requests.request(method, BROKER + path, json=body, headers={"Authorization": f"Bearer {token}"},
                                proxies={"http": None, "https": None})
    return response


def grant(provider, purpose, separate=False, cross_border=False):
    response = api("POST", f"/v1/subjects/{SUBJECT}/grants", GRANTS_TOKEN, {
        "provider": provider, "purpose": purpose, "separate_consent": separate,
        "cross_border_consent": cross_border, "policy_version": "2025-01", "evidence": "sdk-test"})
    assert response.status_code == 201, response.text


grant("huawei-push", "essential.service.notifications.push")
checks = []

# The process-wide way every Python HTTP client reads: HTTPS_PROXY, plus the CA for requests.
os.environ["HTTPS_PROXY"] = PROXY
os.environ["REQUESTS_CA_BUNDLE"] = CA
os.environ["SSL_CERT_FILE"] = CA
PUSH = "https://push-api.cloud.huawei.com/v1/10086/messages:send"

# 1. requests, from the environment alone.
response = requests.post(PUSH, json={"message": {"token": ["PY-REQUESTS"]}}, headers={"X-Share-Subject": SUBJECT})
assert response.status_code == 200, (response.status_code, response.text)
assert response.headers["X-Share-Decision"] == "allowed", response.headers
assert response.json()["code"] == "80000000", response.text
checks.append("requests")

# 2. httpx, with the proxy and CA given to the client (a keep-alive client: two requests, one tunnel).
with httpx.Client(proxy=PROXY, verify=ssl.create_default_context(cafile=CA), trust_env=False) as client:
    for token in ["PY-HTTPX-1", "PY-HTTPX-2"]:
        response = client.post(PUSH, json={"message": {"token": [token]}}, headers={"X-Share-Subject": SUBJECT})
        assert response.status_code == 200, (response.status_code, response.text)
checks.append("httpx")

# The providers' SDKs, each in its newest and oldest supported release: Tests/sdk/provider_sdks.py.

# 3. A CONNECT to a host no adapter claims: 403, through requests' own error.
try:
    requests.get("https://example.org/")
    raise AssertionError("a tunnel to example.org was opened")
except requests.exceptions.ProxyError as error:
    assert "403" in str(error), error
checks.append("refused-tunnel")

# What the log holds: every share above, allowed, as forward-proxy shares.
shares = api("GET", f"/v1/shares?subject={SUBJECT}&limit=50", COMPLIANCE_TOKEN)
assert shares.status_code == 200, shares.text
items = [item["share"] for item in shares.json()["shares"]]
providers = sorted(item["provider"] for item in items)
assert providers == ["huawei-push"] * 3, providers
assert all(item["decision"] == "allowed" and item["channel"] == "proxy" for item in items), items
print(json.dumps({"ok": checks, "shares": len(items)}))
