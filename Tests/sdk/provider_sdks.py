"""One provider SDK from PyPI, in the release a matrix entry installs (Tests/sdk/sdk-matrix.txt),
through the broker as its HTTPS proxy (TLS interception), in its default configuration changed
only by proxy, CA, subject and made-up credentials (issue 30).

Usage: provider_sdks.py SDK, run by Tests/sharebrokerTests/SDKTunnelTests.swift once per matrix
entry against `sharebroker serve --sandbox`, with the entry's folder first on PYTHONPATH and
BROKER, CA, SHARE_TOKEN, GRANTS_TOKEN, COMPLIANCE_TOKEN, ALIPAY_PUBLIC_KEY and SUBJECT (one per
entry) in the environment. Each check asserts what the SDK got back; the provider simulators
answer success only to the broker's own credentials (a signature with the real secret, a token
they issued), so a call that reached them with the SDK's made-up ones fails. Then the share log
must hold exactly the shares about the subject: allowed, through the tunnel, nothing for an
SDK's own sign-in. Prints one JSON line: the SDK, the version imported, the shares."""

import importlib.metadata
import json
import os
import sys
import urllib.parse

import requests

SDK = sys.argv[1]
BROKER = os.environ["BROKER"]
CA = os.environ["CA"]
SHARE_TOKEN = os.environ["SHARE_TOKEN"]
SUBJECT = os.environ["SUBJECT"]
authority = urllib.parse.urlsplit(BROKER).netloc
# The subject rides in the proxy user name: every SDK below can be pointed at a proxy, few can add a header.
os.environ["HTTPS_PROXY"] = f"http://demo-app;subject={SUBJECT}:{SHARE_TOKEN}@{authority}"
os.environ["REQUESTS_CA_BUNDLE"] = CA
os.environ["SSL_CERT_FILE"] = CA


def api(method, path, token, body=None):
    """The broker's own API, directly (no proxy)."""
    return requests.request(method, BROKER + path, json=body, headers={"Authorization": f"Bearer {token}"},
                            proxies={"http": None, "https": None}, verify=True)


def grant(provider, purpose, separate=False, cross_border=False):
    response = api("POST", f"/v1/subjects/{SUBJECT}/grants", os.environ["GRANTS_TOKEN"], {
        "provider": provider, "purpose": purpose, "separate_consent": separate,
        "cross_border_consent": cross_border, "policy_version": "2025-01", "evidence": "sdk-matrix"})
    assert response.status_code == 201, response.text


RUNS = {}


def sdk(name):
    def register(function):
        RUNS[name] = function
        return function
    return register


@sdk("alibabacloud-cloudauth20190307")
def alibaba_v3():
    """Id2MetaVerify with the generated V3 client: up to 3.2 the parameters in the query, from 3.3
    (tea-openapi 0.4) in a form body; signed ACS3 with the SDK's made-up key, re-signed by the broker.
    Its CA is `Config(ca=…)` (it reads neither REQUESTS_CA_BUNDLE nor SSL_CERT_FILE)."""
    grant("alibaba-cloudauth", "essential.legal_obligation", separate=True)
    from alibabacloud_cloudauth20190307 import models
    from alibabacloud_cloudauth20190307.client import Client
    from alibabacloud_tea_openapi import models as openapi_models

    client = Client(openapi_models.Config(access_key_id="LTAIsdkOwnKeyId", access_key_secret="sdk-own-secret",
                                          endpoint="cloudauth.aliyuncs.com", ca=CA))
    answer = client.id_2meta_verify(models.Id2MetaVerifyRequest(
        param_type="normal", user_name="张三", identify_num="11010519491231002X")).body
    assert answer.code == "200" and answer.result_object.biz_code == "1", answer.to_map()
    return ["alibaba-cloudauth"]


@sdk("aliyun-python-sdk-cloudauth")
def alibaba_v1():
    """The older RPC SDK (aliyun-python-sdk-core): a form body and the V1 HMAC-SHA1 signature's
    parameters in the query, all dropped by the broker, which signs itself. Its CA is `verify=`
    (its vendored requests carries its own bundle)."""
    grant("alibaba-cloudauth", "essential.legal_obligation", separate=True)
    from aliyunsdkcloudauth.request.v20190307.Id2MetaVerifyRequest import Id2MetaVerifyRequest
    from aliyunsdkcore.client import AcsClient

    client = AcsClient("LTAIsdkOwnKeyId", "sdk-own-secret", "cn-hangzhou", verify=CA)
    request = Id2MetaVerifyRequest()
    request.set_ParamType("normal")
    request.set_UserName("张三")
    request.set_IdentifyNum("11010519491231002X")
    answer = json.loads(client.do_action_with_exception(request))
    assert answer["Code"] == "200" and answer["ResultObject"]["BizCode"] == "1", answer
    return ["alibaba-cloudauth"]


@sdk("tencentcloud-sdk-python")
def tencent():
    """FaceID IdCardVerification, TC3-signed with a made-up SecretId; the broker re-signs. Its CA
    is `HttpProfile(certification=…)` (certifi otherwise); the subject could also ride in the
    request model's `headers`. An error answer reaches the SDK as its exception."""
    grant("tencent-faceid", "essential.legal_obligation", separate=True)
    from tencentcloud.common import credential
    from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile
    from tencentcloud.faceid.v20180301 import faceid_client, models

    client = faceid_client.FaceidClient(credential.Credential("AKIDsdkOwnSecretId", "sdk-own-secret-key"), "ap-guangzhou",
                                        ClientProfile(httpProfile=HttpProfile(certification=CA)))
    request = models.IdCardVerificationRequest()
    request.IdCard = "11010519491231002X"
    request.Name = "张三"
    result = client.IdCardVerification(request)
    assert result.Result == "0", result.to_json_string()
    missing = models.IdCardVerificationRequest()
    missing.IdCard = "11010519491231002X"
    try:
        client.IdCardVerification(missing)
        raise AssertionError("an IdCardVerification without Name succeeded")
    except TencentCloudSDKException as error:
        assert error.get_code() == "MissingParameter", error
    return ["tencent-faceid", "tencent-faceid"]


@sdk("wechatpy")
def wechat():
    """The OAuth code exchange; the app id and secret it sends are replaced by the broker's."""
    grant("wechat-login", "essential.service.authentication")
    from wechatpy.oauth import WeChatOAuth

    token = WeChatOAuth("wx-sdk-own-app-id", "sdk-own-app-secret", "https://app.example/callback").fetch_access_token(f"SDK-CODE-{SUBJECT}")
    assert token["openid"].startswith("o") and token["access_token"], token
    return ["wechat-login"]


@sdk("python-alipay-sdk")
def alipay():
    """alipay.system.oauth.token, signed with the SDK's own key and re-signed by the broker; the
    SDK checks the answer's signature with the simulator's Alipay key."""
    grant("alipay-login", "essential.service.authentication")
    from alipay import AliPay
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    own_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()).decode()
    client = AliPay(appid="2021000000000001", app_notify_url=None, app_private_key_string=own_key,
                    alipay_public_key_string=os.environ["ALIPAY_PUBLIC_KEY"], sign_type="RSA2")
    answer = client.server_api("alipay.system.oauth.token", grant_type="authorization_code", code=f"SDK-ALIPAY-CODE-{SUBJECT}")
    assert answer["user_id"].startswith("2088") and answer["access_token"], answer
    return ["alipay-login"]


@sdk("googlemaps")
def google_maps():
    """Reverse geocoding; its own `AIza…` key is replaced by the broker's."""
    grant("google-maps", "functional.service", separate=True, cross_border=True)
    import googlemaps

    places = googlemaps.Client(key="AIza" + "s" * 35).reverse_geocode((39.990464, 116.481488), language="zh-CN")
    assert places and places[0]["geometry"]["location"]["lat"] == 39.990464, places
    return ["google-maps"]


def throwaway_service_account():
    """A service-account file as the Firebase console hands one out, with a key made here."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    return {"type": "service_account", "project_id": "sharebroker-sandbox", "private_key_id": "0" * 40, "private_key": key,
            "client_email": "sdk-own@sharebroker-sandbox.iam.gserviceaccount.com", "client_id": "1" * 21,
            "token_uri": "https://oauth2.googleapis.com/token", "auth_uri": "https://accounts.google.com/o/oauth2/auth"}


@sdk("firebase-admin")
def firebase():
    """Started the way its docs say: `credentials.Certificate(service_account)`. The SDK first signs
    itself in at oauth2.googleapis.com/token (answered by the broker with a placeholder, not a share),
    then sends; the FCM simulator accepts only a token it issued to the broker. Then `fid`, which
    firebase-admin 7.7 prefers to `token`, where the release has it."""
    grant("fcm", "essential.service.notifications.push", cross_border=True)
    import firebase_admin
    from firebase_admin import credentials, messaging

    app = firebase_admin.initialize_app(credentials.Certificate(throwaway_service_account()), name=SUBJECT)
    providers = []
    name = messaging.send(messaging.Message(token="PY-FIREBASE-TOKEN", notification=messaging.Notification(title="Hi", body="Parcel"),
                                            data={"k": "v"}), app=app)
    assert name.startswith("projects/sharebroker-sandbox/messages/"), name
    providers.append("fcm")
    if "fid" in messaging.Message.__init__.__code__.co_varnames:
        name = messaging.send(messaging.Message(fid="PY-FIREBASE-FID", notification=messaging.Notification(title="Hi", body="Parcel")),
                              app=app)
        assert name.startswith("projects/sharebroker-sandbox/messages/"), name
        providers.append("fcm")
    return providers


@sdk("pyfcm")
def pyfcm():
    """FCM HTTP v1 through pyfcm, started with a service-account file as its README says: it signs
    itself in at oauth2.googleapis.com/token (answered by the broker), then sends."""
    grant("fcm", "essential.service.notifications.push", cross_border=True)
    import tempfile

    from pyfcm import FCMNotification

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        json.dump(throwaway_service_account(), file)
    fcm = FCMNotification(service_account_file=file.name, project_id="sharebroker-sandbox")
    sent = fcm.notify(fcm_token="PY-FCM-TOKEN", notification_title="Hi", notification_body="Parcel", data_payload={"k": "v"})
    assert sent["name"].startswith("projects/sharebroker-sandbox/messages/"), sent
    return ["fcm"]


expected = sorted(RUNS[SDK]())
shares = api("GET", f"/v1/shares?subject={SUBJECT}&limit=50", os.environ["COMPLIANCE_TOKEN"])
assert shares.status_code == 200, shares.text
items = [item["share"] for item in shares.json()["shares"]]
assert sorted(item["provider"] for item in items) == expected, (expected, items)
assert all(item["decision"] == "allowed" and item["channel"] == "proxy" for item in items), items
# The release imported: of the package the entry names first (PACKAGE), which is the SDK's own or its product package.
print(json.dumps({"sdk": SDK, "version": importlib.metadata.version(os.environ.get("PACKAGE", SDK)), "shares": len(items)}))
