"""aioapns, the APNs client from PyPI, through the broker (issue 28, item 5), in its default
configuration changed only by the proxy, the broker's CA, the subject in the payload and a made-up
signing key.

aioapns speaks HTTP/2 only, offers no ALPN inside the tunnel and sends its CONNECT without
Proxy-Authorization: it reaches the broker on a listener of its own (a sidecar client, `listen:`),
and names each push's subject in the payload's `x-share-subject` key, which the APNs adapter
declares `subject: true` (read by the broker, never sent to Apple). It signs its provider token with
its own key; the broker drops it and signs with the team's key, the only one the simulator accepts.

Run by Tests/sharebrokerTests/SDKTunnelTests.swift against `sharebroker serve --sandbox --config
broker.yaml` (the config adds the sidecar client), with BROKER, SIDECAR (its port), CA, GRANTS_TOKEN
and COMPLIANCE_TOKEN in the environment. Prints one JSON line."""

import asyncio
import importlib.metadata
import json
import os
import socket
import ssl
import sys

import requests
from aioapns import APNs, NotificationRequest, PushType
from aioapns.connection import HttpProxyProtocol
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

BROKER = os.environ["BROKER"]
CA = os.environ["CA"]
SUBJECT = "apns-u1"
TOKEN = "a1" * 32


def api(method, path, token, body=None):
    """The broker's own API, directly."""
    return requests.request(method, BROKER + path, json=body, headers={"Authorization": f"Bearer {token}"},
                            proxies={"http": None, "https": None})


response = api("POST", f"/v1/subjects/{SUBJECT}/grants", os.environ["GRANTS_TOKEN"], {
    "provider": "apns", "purpose": "essential.service.notifications.push", "separate_consent": False,
    "cross_border_consent": True, "policy_version": "2025-01", "evidence": "sdk-test"})
assert response.status_code == 201, response.text



async def create_apns_connection(self):
    """aioapns 4.0's proxy support, fixed for Python 3.9 and later (docs/sdk-proxy.md): after the CONNECT
    it hands asyncio's TransportSocket wrapper to `loop.create_connection(sock=…)`, which has needed a
    real socket since Python 3.9 ('TransportSocket' object has no attribute 'send'), so it fails before a
    byte of TLS leaves, whatever the proxy. Here the tunnel's socket is passed as a socket (a duplicate
    of it), with the CONNECT's transport paused so that only the TLS connection reads. On Python 3.8
    aioapns runs unchanged."""
    self.transport.pause_reading()
    tunnel = socket.socket(fileno=os.dup(self.transport.get_extra_info("socket").fileno()))
    _, self.apns_protocol = await self.loop.create_connection(
        self.apns_protocol_factory, server_hostname=self.apns_host, ssl=self.ssl_context, sock=tunnel)
    self.apns_connection_ready.set()


if sys.version_info >= (3, 9):
    HttpProxyProtocol.create_apns_connection = create_apns_connection

# The SDK's own key: a made-up one (the broker re-signs with the team's).
own_key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()


async def main():
    client = APNs(key=own_key, key_id="SDKOWNKEY1", team_id="SDKOWNTEAM", topic="com.example.sharebroker",
                  use_sandbox=False, proxy_host="127.0.0.1", proxy_port=int(os.environ["SIDECAR"]),
                  ssl_context=ssl.create_default_context(cafile=CA))
    results = []
    for text in ["Your order shipped", "Your parcel arrives today"]:
        results.append(await client.send_notification(NotificationRequest(
            device_token=TOKEN, push_type=PushType.ALERT,
            message={"aps": {"alert": {"title": "Order", "body": text}, "badge": 1}, "x-share-subject": SUBJECT})))
    # A push about nobody: the broker refuses it, and aioapns hands the refusal back.
    results.append(await client.send_notification(NotificationRequest(
        device_token=TOKEN, message={"aps": {"alert": "hello"}})))
    # A push for another app: APNs's own refusal reaches the SDK through the broker.
    other = APNs(key=own_key, key_id="SDKOWNKEY1", team_id="SDKOWNTEAM", topic="com.example.other",
                 use_sandbox=False, proxy_host="127.0.0.1", proxy_port=int(os.environ["SIDECAR"]),
                 ssl_context=ssl.create_default_context(cafile=CA))
    results.append(await other.send_notification(NotificationRequest(
        device_token=TOKEN, message={"aps": {"alert": "hello"}, "x-share-subject": SUBJECT})))
    return results


first, second, nobody, elsewhere = asyncio.run(main())
assert first.is_successful and second.is_successful, (first.status, first.description, second.status, second.description)
assert not nobody.is_successful and (nobody.status, nobody.description) == ("400", "subject_missing"), (nobody.status, nobody.description)
assert (elsewhere.status, elsewhere.description) == ("400", "DeviceTokenNotForTopic"), (elsewhere.status, elsewhere.description)

# The log: both pushes, the sidecar client's, about the subject; the subject key was removed, not sent.
shares = api("GET", f"/v1/shares?subject={SUBJECT}&limit=10", os.environ["COMPLIANCE_TOKEN"])
assert shares.status_code == 200, shares.text
items = [item["share"] for item in shares.json()["shares"]]
assert [(item["provider"], item["decision"], item["caller"]) for item in items] == [("apns", "allowed", "apns-sidecar")] * 3, items
fields = {field["path"]: field for field in items[0]["fields"]}
assert fields["x-share-subject"]["action"] == "stripped" and fields["x-share-subject"]["reason"] == "subject_field", fields
assert fields["aps.alert.body"]["action"] == "sent", fields
print(json.dumps({"sdk": "aioapns", "version": importlib.metadata.version("aioapns"), "shares": len(items)}))
