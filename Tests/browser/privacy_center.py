"""The privacy center in a real browser (Debian's chromium, headless, through chromedriver and
Selenium), against `sharebroker serve --sandbox` (issue 13).

Run by Tests/sharebrokerTests/PrivacyCenterBrowserTests.swift with BROKER, ARTIFACTS (where the
screenshots go) and the sandbox's tokens and user-JWT settings in the environment."""

import base64
import hashlib
import hmac
import json
import os
import sys
import time

import requests
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

BROKER = os.environ["BROKER"]
ARTIFACTS = os.environ["ARTIFACTS"]
GRANTS = {"Authorization": "Bearer " + os.environ["GRANTS_TOKEN"]}
SHARE = {"Authorization": "Bearer " + os.environ["SHARE_TOKEN"]}
NO_PROXY = {"http": None, "https": None}


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def user_token(subject, expires_in=3600):
    """An HS256 end-user token as the sandbox's identity provider would sign it."""
    now = int(time.time())
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"sub": subject, "iss": os.environ["USER_ISSUER"], "aud": "sharebroker",
                           "iat": now - 5, "exp": now + expires_in}).encode())
    mac = hmac.new(os.environ["USER_SECRET"].encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(mac)}"


def grant(subject, provider, purpose, categories=None, separate=False):
    response = requests.post(f"{BROKER}/v1/subjects/{subject}/grants", headers=GRANTS, proxies=NO_PROXY, json={
        "provider": provider, "purpose": purpose, "categories": categories, "separate_consent": separate,
        "cross_border_consent": False, "policy_version": "2025-01", "evidence": "browser-test"})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def push(subject, token):
    response = requests.post(f"{BROKER}/v1/proxy/huawei-push/v1/10086/messages:send", proxies=NO_PROXY,
                             headers={**SHARE, "X-Share-Subject": subject},
                             json={"message": {"token": [token]}})
    assert response.status_code == 200, response.text


huawei = grant("u-1001", "huawei-push", "essential.service.notifications.push", ["user.device.push_token"])
grant("u-1001", "tencent-faceid", "essential.legal_obligation", separate=True)
for token in ["BROWSER-1", "BROWSER-2"]:
    push("u-1001", token)
grant("u-2002", "wechat-login", "essential.service.authentication")

options = webdriver.ChromeOptions()
for argument in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--lang=en-US"]:
    options.add_argument(argument)
options.binary_location = "/usr/bin/chromium"
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
wait = WebDriverWait(driver, 20)
checks = []
try:
    def open_center(token, lang="en", width=1280):
        driver.set_window_size(width, 900)
        driver.get("about:blank")   # a fresh page, as an app's new webview would be
        driver.get(f"{BROKER}/privacy?lang={lang}#token={token}")

    def shot(name):
        driver.save_screenshot(os.path.join(ARTIFACTS, name))

    # 1. The user's grants in words, and what was shared, at desktop width.
    alice = user_token("u-1001")
    open_center(alice)
    wait.until(EC.visibility_of_element_located((By.ID, "grants-section")))
    assert "#token" not in driver.current_url, "the token stays out of the address bar"
    providers = [section.get_attribute("data-provider") for section in driver.find_elements(By.CSS_SELECTOR, "[data-provider]")]
    assert providers == ["huawei-push", "tencent-faceid"], providers
    text = driver.find_element(By.ID, "providers").text
    for words in ["Huawei Push Kit data processing agreement", "Push notifications", "Sending notifications to your device",
                  "Push token of your device", "Real-name verification required by law", "sensitive", "Active"]:
        assert words in text, (words, text)
    shares = driver.find_elements(By.CSS_SELECTOR, "#shares li[data-share]")
    assert len(shares) == 2 and all("Shared" in item.text for item in shares), [item.text for item in shares]
    assert "BROWSER-1" not in driver.page_source, "never a value"
    shot("privacy-1280.png")
    checks.append("grants-and-shares")

    # 1b. The user's consent records (ISO/IEC TS 27560), offered as a download of their two grants.
    records = driver.find_element(By.ID, "records-download")
    wait.until(lambda _: records.is_displayed())
    assert records.get_attribute("download") == "consent-records-u-1001.json", records.get_attribute("download")
    assert records.get_attribute("href").startswith("blob:") and records.get_attribute("data-count") == "2", \
        (records.get_attribute("href"), records.get_attribute("data-count"))
    assert "consent records" in records.text, records.text
    checks.append("consent-records")

    # 2. Revoke Huawei: confirm, then the revocation's status in words until the provider confirms.
    card = driver.find_element(By.CSS_SELECTOR, f'[data-grant="{huawei}"]')
    card.find_element(By.TAG_NAME, "button").click()
    dialog = wait.until(EC.visibility_of_element_located((By.ID, "confirm")))
    assert "Revoke this authorization?" in dialog.text, dialog.text
    driver.find_element(By.ID, "confirm-ok").click()
    wait.until(lambda _: card.find_element(By.CSS_SELECTOR, ".revocation").get_attribute("data-status") == "acknowledged")
    assert "Confirmed by the provider" in card.text, card.text
    listed = requests.get(f"{BROKER}/v1/subjects/u-1001/grants", headers=GRANTS, proxies=NO_PROXY).json()["grants"]
    assert [g["status"] for g in listed if g["id"] == huawei] == ["revoked"], listed
    checks.append("revoke-acknowledged")

    # 3. A phone-sized screen, in Chinese.
    open_center(alice, lang="zh-CN", width=360)
    wait.until(EC.visibility_of_element_located((By.ID, "grants-section")))
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
    assert "隐私中心" in driver.title and "已撤回" in driver.find_element(By.ID, "providers").text
    width = driver.execute_script("return document.documentElement.scrollWidth")
    assert width <= 360, f"the page scrolls sideways at 360 px ({width})"
    shot("privacy-360-zh.png")
    checks.append("360px-zh-CN")

    # 4. Another user sees only their own data.
    open_center(user_token("u-2002"))
    wait.until(EC.visibility_of_element_located((By.ID, "grants-section")))
    providers = [section.get_attribute("data-provider") for section in driver.find_elements(By.CSS_SELECTOR, "[data-provider]")]
    assert providers == ["wechat-login"], providers
    assert "Huawei" not in driver.find_element(By.ID, "main").text
    checks.append("other-user")

    # 5. An expired token: the sign-in message, nothing else.
    open_center(user_token("u-1001", expires_in=-120))
    notice = wait.until(EC.visibility_of_element_located((By.ID, "signin")))
    assert "sign in again" in notice.text, notice.text
    assert not driver.find_element(By.ID, "grants-section").is_displayed()
    shot("privacy-expired.png")
    checks.append("expired-token")

    # 6. Keyboard: the first control is reachable and every button has a name.
    open_center(alice)
    wait.until(EC.visibility_of_element_located((By.ID, "grants-section")))
    for button in driver.find_elements(By.TAG_NAME, "button"):
        if button.is_displayed():
            assert (button.get_attribute("aria-label") or button.text).strip(), button.get_attribute("outerHTML")
    checks.append("labels")

    # 7. Delete the account from the page.
    driver.find_element(By.ID, "delete").click()
    wait.until(EC.visibility_of_element_located((By.ID, "confirm")))
    driver.find_element(By.ID, "confirm-ok").click()
    wait.until(EC.text_to_be_present_in_element((By.ID, "delete-status"), "Your account is deleted"))
    refused = requests.post(f"{BROKER}/v1/proxy/huawei-push/v1/10086/messages:send", proxies=NO_PROXY,
                            headers={**SHARE, "X-Share-Subject": "u-1001"}, json={"message": {"token": ["AFTER"]}})
    assert refused.status_code == 403 and refused.json()["code"] == "subject_deleted", refused.text
    checks.append("delete-account")

    # The browser console saw no script error and no CSP violation (the expired token's 401 is a network entry).
    errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE" and entry.get("source") != "network"]
    assert not errors, errors
finally:
    driver.quit()
print(json.dumps({"ok": checks}))
