"""Python's HTTP clients through the broker as their HTTPS proxy (TLS interception), in their default
https configuration, changed only by proxy and CA settings (issue 12). The providers' own SDKs are
in provider_sdks.py (issue 30).

Run by Tests/sharebrokerTests/SDKTunnelTests.swift against `sharebroker serve --sandbox`, with
BROKER (http://127.0.0.1:PORT), CA (the broker's CA certificate) and the sandbox's tokens in the
environment. Each check asserts what arrived."""

import json
import os
import socket
import ssl
import sys
import urllib.parse

import h2.config
import h2.connection
import h2.events
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

# 2b. httpx with HTTP/2 (http2=True): ALPN h2 inside the tunnel, two requests as two streams of one connection.
with httpx.Client(proxy=PROXY, verify=ssl.create_default_context(cafile=CA), trust_env=False, http2=True) as client:
    for token in ["PY-HTTPX-H2-1", "PY-HTTPX-H2-2"]:
        response = client.post(PUSH, json={"message": {"token": [token]}}, headers={"X-Share-Subject": SUBJECT})
        assert response.status_code == 200 and response.http_version == "HTTP/2", (response.http_version, response.text)
        assert response.headers["X-Share-Decision"] == "allowed", response.headers
checks.append("httpx-h2")


def h2_without_alpn():
    """HTTP/2 inside the tunnel from a client that offers no ALPN and starts with the connection preface,
    as aioapns does (its ssl context sets no ALPN): the tunnel is told by the first bytes."""
    host, port = authority.split(":")
    raw = socket.create_connection((host, int(port)))
    credentials = __import__("base64").b64encode(f"demo-app:{SHARE_TOKEN}".encode()).decode()
    raw.sendall(f"CONNECT push-api.cloud.huawei.com:443 HTTP/1.1\r\nHost: push-api.cloud.huawei.com:443\r\n"
                f"Proxy-Authorization: Basic {credentials}\r\n\r\n".encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += raw.recv(4096)
    assert answer.startswith(b"HTTP/1.1 200"), answer
    context = ssl.create_default_context(cafile=CA)   # no set_alpn_protocols, as aioapns
    tls = context.wrap_socket(raw, server_hostname="push-api.cloud.huawei.com")
    assert tls.selected_alpn_protocol() is None
    connection = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
    connection.initiate_connection()
    body = json.dumps({"message": {"token": ["PY-H2-NO-ALPN"]}}).encode()
    connection.send_headers(1, [(":method", "POST"), (":scheme", "https"), (":authority", "push-api.cloud.huawei.com"),
                                (":path", "/v1/10086/messages:send"), ("content-type", "application/json"),
                                ("x-share-subject", SUBJECT), ("content-length", str(len(body)))])
    connection.send_data(1, body, end_stream=True)
    tls.sendall(connection.data_to_send())
    status, decision, ended = None, None, False
    while not ended:
        data = tls.recv(65536)
        assert data, "the tunnel closed before the answer"
        for event in connection.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                headers = {name.decode(): value.decode() for name, value in event.headers}
                status, decision = headers[":status"], headers.get("x-share-decision")
            elif isinstance(event, h2.events.DataReceived):
                connection.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                ended = True
        tls.sendall(connection.data_to_send())
    tls.close()
    assert (status, decision) == ("200", "allowed"), (status, decision)


h2_without_alpn()
checks.append("h2-without-alpn")

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
assert providers == ["huawei-push"] * 6, providers
assert all(item["decision"] == "allowed" and item["channel"] == "proxy" for item in items), items
print(json.dumps({"ok": checks, "shares": len(items)}))
