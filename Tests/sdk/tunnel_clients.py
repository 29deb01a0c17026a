"""Real clients through the broker as their HTTPS proxy (TLS interception), in their default
https configuration, changed only by proxy and CA settings (issue 12).

Run by Tests/sharebrokerTests/SDKTunnelTests.swift against `sharebroker serve --sandbox`, with
BROKER (http://127.0.0.1:PORT), CA (the broker's CA certificate) and the sandbox's tokens in the
environment. Each check asserts what arrived: a provider simulator answers success only when
the broker re-signed (Tencent Cloud) or injected its credentials (WeChat)."""

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
grant("tencent-faceid", "essential.legal_obligation", separate=True)
grant("wechat-login", "essential.service.authentication")
grant("alipay-login", "essential.service.authentication")
grant("google-maps", "functional.service", separate=True, cross_border=True)
grant("fcm", "essential.service.notifications.push", cross_border=True)
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

# 3. Tencent Cloud's SDK: FaceID IdCardVerification. The SDK signs with its own (here: made-up)
#    SecretId into Authorization; the broker drops that and re-signs with the real one, which the
#    simulator checks. HTTPS_PROXY is read by the SDK; its CA bundle is certifi unless the profile
#    names one; the subject rides in the request model's public `headers`.
from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.faceid.v20180301 import faceid_client, models

client = faceid_client.FaceidClient(credential.Credential("AKIDsdkOwnSecretId", "sdk-own-secret-key"), "ap-guangzhou",
                                    ClientProfile(httpProfile=HttpProfile(certification=CA)))
request = models.IdCardVerificationRequest()
request.IdCard = "11010519491231002X"
request.Name = "张三"
request.headers = {"X-Share-Subject": SUBJECT}
result = client.IdCardVerification(request)
assert result.Result == "0", result.to_json_string()
checks.append("tencentcloud-sdk-python")

#    An error answer reaches the SDK as its exception (it reads errors only under a
#    `Content-Type: application/json` exactly, as Tencent Cloud sends it).
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

missing = models.IdCardVerificationRequest()
missing.IdCard = "11010519491231002X"
missing.headers = {"X-Share-Subject": SUBJECT}
try:
    client.IdCardVerification(missing)
    raise AssertionError("an IdCardVerification without Name succeeded")
except TencentCloudSDKException as error:
    assert error.get_code() == "MissingParameter", error
checks.append("tencentcloud-sdk-python-error")

# 4. wechatpy: the OAuth code exchange. WeChatOAuth has no public way to add a header, so the
#    subject rides in the proxy user name; the app id and secret it sends are replaced by the
#    broker's (the simulator refuses any other).
os.environ["HTTPS_PROXY"] = f"http://demo-app;subject={SUBJECT}:{SHARE_TOKEN}@{authority}"
from wechatpy.oauth import WeChatOAuth

oauth = WeChatOAuth("wx-sdk-own-app-id", "sdk-own-app-secret", "https://app.example/callback")
token = oauth.fetch_access_token("SDK-CODE-1")
assert token["openid"].startswith("o") and token["access_token"], token
checks.append("wechatpy")

# 5. python-alipay-sdk: alipay.system.oauth.token, which it sends as a GET with every parameter
#    (biz_content "{}" included) in the query, signed with its own key; the broker drops the
#    common parameters and the signature, re-signs with the app's key, and the SDK checks the
#    answer's signature with Alipay's public key (the simulator's). urllib reads HTTPS_PROXY
#    (the subject in the user name, as for wechatpy) and SSL_CERT_FILE.
from alipay import AliPay
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

own_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()).decode()
alipay = AliPay(appid="2021000000000001", app_notify_url=None, app_private_key_string=own_key,
                alipay_public_key_string=os.environ["ALIPAY_PUBLIC_KEY"], sign_type="RSA2")
answer = alipay.server_api("alipay.system.oauth.token", grant_type="authorization_code", code="SDK-ALIPAY-CODE")
assert answer["user_id"].startswith("2088") and answer["access_token"], answer
checks.append("python-alipay-sdk")

# 6. googlemaps (Google's client for the Maps web services): reverse geocoding. It insists on an
#    `AIza…` key of its own, which the broker drops for the real one; requests underneath reads
#    HTTPS_PROXY and REQUESTS_CA_BUNDLE; the subject goes in its requests_kwargs headers.
import googlemaps

gmaps = googlemaps.Client(key="AIza" + "s" * 35, requests_kwargs={"headers": {"X-Share-Subject": SUBJECT}})
places = gmaps.reverse_geocode((39.990464, 116.481488), language="zh-CN")
assert places and places[0]["geometry"]["location"]["lat"] == 39.990464, places
checks.append("googlemaps")

# 7. pyfcm (FCM HTTP v1). The broker holds the service account and signs its own token requests;
#    the SDK gets a stand-in credential with a placeholder token, which the broker drops. requests
#    underneath reads HTTPS_PROXY (the subject in the user name) and REQUESTS_CA_BUNDLE.
from google.auth.credentials import Credentials as GoogleCredentials
from pyfcm import FCMNotification


class StandIn(GoogleCredentials):
    def refresh(self, request):
        self.token = "placeholder-the-broker-holds-the-service-account"


fcm = FCMNotification(credentials=StandIn(), project_id="sharebroker-sandbox")
sent = fcm.notify(fcm_token="PY-FCM-TOKEN", notification_title="Hi", notification_body="Parcel", data_payload={"k": "v"})
assert sent["name"].startswith("projects/sharebroker-sandbox/messages/"), sent
checks.append("pyfcm")

# 8. A CONNECT to a host no adapter claims: 403, through requests' own error.
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
assert providers == ["alipay-login", "fcm", "google-maps"] + ["huawei-push"] * 3 + ["tencent-faceid"] * 2 + ["wechat-login"], providers
assert all(item["decision"] == "allowed" and item["channel"] == "proxy" for item in items), items
print(json.dumps({"ok": checks, "shares": len(items)}))
