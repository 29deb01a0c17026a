// The privacy center: the signed-in user's authorizations, what was shared about them,
// revoking, and deleting the account. The token arrives in the URL fragment (never sent to a
// server, never in a log), is kept in memory only, and goes to the JSON API as a Bearer token.
"use strict";

const TEXT = {
  en: {
    title: "Privacy center", loading: "Loading…", grantsHeading: "Who receives your data",
    grantsHint: "Each authorization you gave, in words. You can revoke any of them.",
    recordsDownload: "Download my consent records (JSON, ISO/IEC TS 27560)",
    sharesHeading: "What was shared",
    sharesHint: "Every time data about you went to a provider, newest first. Values are never kept here.",
    more: "Show older", deleteHeading: "Delete my account",
    deleteHint: "Every authorization ends, and every provider that received data about you is told to delete it.",
    deleteButton: "Delete my account", cancel: "Cancel",
    signIn: "Your sign-in has expired or is not valid here. Please sign in again in the app.",
    failed: "Something went wrong. Please try again later.",
    noGrants: "You have not authorized any provider.", noShares: "Nothing has been shared about you.",
    purpose: "Purpose", data: "Data", granted: "Authorized", policy: "Privacy policy version", state: "Status",
    crossBorder: "Leaves your region: sent to {region}", sensitive: "sensitive", allData: "All data the agreement allows",
    active: "Active", revoked: "Revoked", expired: "Expired", revoke: "Revoke",
    revokeTitle: "Revoke this authorization?",
    revokeText: "{provider} will receive nothing more for this purpose, and will be asked to delete what it received.",
    deleteTitle: "Delete your account?",
    deleteText: "This cannot be undone. Every authorization ends and every provider is asked to delete your data.",
    deleted: "Your account is deleted. Providers are being told to delete your data.",
    kinds: { push: "Push notifications", login: "Sign-in", location: "Location", realname: "Identity verification" },
    decisions: { allowed: "Shared", redacted: "Shared in part", blocked: "Refused, nothing sent" },
    revocation: {
      pending: "Being sent to the provider…", sent: "Being sent to the provider…",
      acknowledged: "Confirmed by the provider: your data is deleted there.",
      manual_required: "This provider has no deletion service: we are asking them in writing, and will tell you.",
      failed: "The provider did not confirm; we keep asking and will tell you.",
    },
  },
  "zh-CN": {
    title: "隐私中心", loading: "正在加载…", grantsHeading: "谁会收到您的信息",
    grantsHint: "您给出的每一项授权。您可以随时撤回其中任何一项。",
    recordsDownload: "下载我的同意记录（JSON，ISO/IEC TS 27560）",
    sharesHeading: "已共享的信息", sharesHint: "您的信息每次发送给第三方的记录，最新的在前。这里从不保存信息的内容。",
    more: "显示更早的记录", deleteHeading: "注销我的账号",
    deleteHint: "所有授权将终止，收到过您信息的每个第三方都会被通知删除。",
    deleteButton: "注销我的账号", cancel: "取消",
    signIn: "您的登录已过期或在此无效。请在应用中重新登录。", failed: "出现问题，请稍后重试。",
    noGrants: "您尚未授权任何第三方。", noShares: "尚未共享过您的任何信息。",
    purpose: "用途", data: "信息", granted: "授权时间", policy: "隐私政策版本", state: "状态",
    crossBorder: "将出境：发送至 {region}", sensitive: "敏感", allData: "协议允许的全部信息",
    active: "有效", revoked: "已撤回", expired: "已过期", revoke: "撤回",
    revokeTitle: "撤回这项授权？", revokeText: "{provider} 将不再收到用于此用途的信息，并会被要求删除已收到的信息。",
    deleteTitle: "注销您的账号？", deleteText: "此操作无法撤销。所有授权将终止，每个第三方都会被要求删除您的信息。",
    deleted: "您的账号已注销。正在通知第三方删除您的信息。",
    kinds: { push: "消息推送", login: "第三方登录", location: "位置服务", realname: "实名认证" },
    decisions: { allowed: "已共享", redacted: "部分共享", blocked: "已拒绝，未发送" },
    revocation: {
      pending: "正在通知第三方…", sent: "正在通知第三方…", acknowledged: "第三方已确认：您的信息已在对方删除。",
      manual_required: "该第三方没有删除接口：我们正以书面方式要求删除，并会告知您结果。",
      failed: "第三方尚未确认；我们会继续要求并告知您。",
    },
  },
};

const state = { token: null, subject: null, lang: "en", catalog: null, cursor: null };

function t(key) { return TEXT[state.lang][key] ?? TEXT.en[key] ?? key; }
function fill(text, values) { return text.replace(/\{(\w+)\}/g, (_, name) => values[name] ?? ""); }
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") node.textContent = value; else node.setAttribute(name, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function chooseLanguage() {
  const asked = new URLSearchParams(location.search).get("lang");
  const served = document.documentElement.lang;
  state.lang = TEXT[asked] ? asked : (TEXT[served] ? served : "en");
  document.documentElement.lang = state.lang;
  document.title = t("title");
  for (const node of document.querySelectorAll("[data-text]")) node.textContent = t(node.dataset.text);
  for (const link of document.querySelectorAll("[data-lang]")) {
    link.setAttribute("aria-current", String(link.dataset.lang === state.lang));
    link.href = "?lang=" + link.dataset.lang;   // the fragment (the token) is not carried: it is in memory
  }
}

class SignInNeeded extends Error {}

async function api(method, path) {
  const response = await fetch(path, { method, headers: { Authorization: "Bearer " + state.token }, cache: "no-store" });
  if (response.status === 401) throw new SignInNeeded();
  const body = response.status === 204 ? {} : await response.json();
  if (!response.ok) throw new Error(body.code || String(response.status));
  return body;
}

function signInAgain() {
  document.getElementById("main").setAttribute("aria-busy", "false");
  for (const id of ["grants-section", "shares-section", "delete-section"]) document.getElementById(id).hidden = true;
  document.getElementById("status").textContent = "";
  const notice = document.getElementById("signin");
  notice.textContent = t("signIn");
  notice.hidden = false;
}

function subjectOf(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(decodeURIComponent(escape(atob(part)))).sub || null;
  } catch { return null; }
}

function categoryWords(id) {
  const info = state.catalog.categories[id];
  return (info && info.labels && info.labels[state.lang]) || id;
}

function purposeWords(id) {
  const labels = state.catalog.purposes[id];
  return (labels && labels[state.lang]) || id;
}

function date(text) {
  return new Date(text).toLocaleString(state.lang, { dateStyle: "medium", timeStyle: "short" });
}

function confirmDialog(title, text, button) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-ok").textContent = button;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true }));
}

async function followRevocation(id, line) {
  for (;;) {
    const revocation = await api("GET", "/v1/revocations/" + encodeURIComponent(id));
    line.textContent = t("revocation")[revocation.status] || revocation.status;
    line.dataset.status = revocation.status;
    if (["acknowledged", "manual_required", "failed"].includes(revocation.status)) return;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

function grantCard(grant, provider) {
  const status = grant.status;
  // No list in the grant: every category the agreement allows for the purpose, named as such.
  const named = grant.categories ?? (provider.scopes?.[grant.purpose] || []);
  const data = el("dd", {}, ...(grant.categories === null ? [el("span", { text: t("allData") + ": " })] : []),
    ...named.filter((category) => state.catalog.categories[category]).map((category, index) => {
        const span = el("span", { text: (index ? ", " : "") + categoryWords(category) });
        if (state.catalog.categories[category]?.sensitive) span.append(el("span", { class: "badge", text: t("sensitive") }));
        return span;
      }));
  const list = el("dl", {},
    el("dt", { text: t("purpose") }), el("dd", { text: purposeWords(grant.purpose) }),
    el("dt", { text: t("data") }), data,
    el("dt", { text: t("granted") }), el("dd", {}, el("time", { datetime: grant.granted_at, text: date(grant.granted_at) })),
    el("dt", { text: t("policy") }), el("dd", { text: grant.policy_version }),
    el("dt", { text: t("state") }), el("dd", { class: "state-" + status, text: t(status) }));
  const card = el("article", { class: "grant", "data-grant": grant.id, "aria-label": purposeWords(grant.purpose) }, list);
  if (provider.region && provider.region !== state.catalog.home_region) {
    card.append(el("p", { class: "hint", text: fill(t("crossBorder"), { region: provider.region }) }));
  }
  if (status === "active") {
    const line = el("p", { class: "status revocation", role: "status", "aria-live": "polite" });
    const button = el("button", { type: "button", class: "secondary", text: t("revoke"),
                                  "aria-label": t("revoke") + ": " + provider.title + ", " + purposeWords(grant.purpose) });
    button.addEventListener("click", async () => {
      if (!await confirmDialog(t("revokeTitle"), fill(t("revokeText"), { provider: provider.title }), t("revoke"))) return;
      button.disabled = true;
      try {
        const revocation = await api("DELETE", "/v1/subjects/" + encodeURIComponent(state.subject) + "/grants/" + encodeURIComponent(grant.id));
        card.querySelector(".state-active").textContent = t("revoked");
        button.remove();
        offerConsentRecords().catch(() => {});
        await followRevocation(revocation.revocation_id, line);
      } catch (error) {
        if (error instanceof SignInNeeded) return signInAgain();
        line.textContent = t("failed");
        button.disabled = false;
      }
    });
    card.append(button, line);
  }
  return card;
}

function renderGrants(grants) {
  const box = document.getElementById("providers");
  box.replaceChildren();
  if (grants.length === 0) { box.append(el("p", { text: t("noGrants") })); return; }
  const byProvider = new Map();
  for (const grant of grants) {
    if (!byProvider.has(grant.provider)) byProvider.set(grant.provider, []);
    byProvider.get(grant.provider).push(grant);
  }
  for (const [name, list] of byProvider) {
    const provider = state.catalog.providers[name] || { title: name, kind: "" };
    const section = el("section", { class: "provider", "data-provider": name, "aria-label": provider.title },
      el("h3", { text: provider.title }), el("p", { class: "kind", text: t("kinds")[provider.kind] || provider.kind }));
    for (const grant of list) section.append(grantCard(grant, provider));
    box.append(section);
  }
}

async function loadShares() {
  const query = "?order=newest&limit=20" + (state.cursor ? "&cursor=" + encodeURIComponent(state.cursor) : "");
  const page = await api("GET", "/v1/subjects/" + encodeURIComponent(state.subject) + "/shares" + query);
  const list = document.getElementById("shares");
  if (!state.cursor && page.shares.length === 0) list.append(el("li", { text: t("noShares") }));
  for (const share of page.shares) {
    const provider = state.catalog.providers[share.provider] || { title: share.provider };
    const categories = (share.categories_sent || []).map(categoryWords).join(", ");
    list.append(el("li", { "data-share": share.share_id },
      el("strong", { text: provider.title }),
      el("time", { datetime: share.time, text: date(share.time) }),
      el("span", { text: categories }),
      el("span", { class: "decision", text: t("decisions")[share.decision] || share.decision })));
  }
  state.cursor = page.next_cursor || null;
  document.getElementById("more").hidden = !state.cursor;
}

// The user's grants as consent records, offered as a file: fetched with their token (a plain link
// could not carry it) and handed to the browser as a download; fetched again after a revoke.
async function offerConsentRecords() {
  const answer = await api("GET", "/v1/subjects/" + encodeURIComponent(state.subject) + "/consent-records");
  const link = document.getElementById("records-download");
  if (link.href) URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(new Blob([JSON.stringify(answer, null, 2)], { type: "application/json" }));
  link.download = "consent-records-" + state.subject + ".json";
  link.dataset.count = String(answer.records.length);
  link.hidden = false;
}

async function start() {
  chooseLanguage();
  const fragment = new URLSearchParams(location.hash.slice(1));
  state.token = fragment.get("token");
  // Out of the address bar and the history at once: the token lives in this page's memory only.
  history.replaceState(null, "", location.pathname + location.search);
  state.subject = state.token && subjectOf(state.token);
  if (!state.subject) return signInAgain();
  try {
    state.catalog = await (await fetch("/v1/privacy/catalog", { cache: "no-store" })).json();
    const grants = await api("GET", "/v1/subjects/" + encodeURIComponent(state.subject) + "/grants");
    renderGrants(grants.grants);
    await offerConsentRecords();
    await loadShares();
    for (const id of ["grants-section", "shares-section", "delete-section"]) document.getElementById(id).hidden = false;
    document.getElementById("status").textContent = "";
    document.getElementById("main").setAttribute("aria-busy", "false");
  } catch (error) {
    if (error instanceof SignInNeeded) return signInAgain();
    document.getElementById("status").textContent = t("failed");
    return;
  }
  document.getElementById("more").addEventListener("click", () => loadShares().catch((error) => {
    if (error instanceof SignInNeeded) signInAgain();
  }));
  document.getElementById("delete").addEventListener("click", async () => {
    if (!await confirmDialog(t("deleteTitle"), t("deleteText"), t("deleteButton"))) return;
    const line = document.getElementById("delete-status");
    try {
      const revocation = await api("DELETE", "/v1/subjects/" + encodeURIComponent(state.subject));
      document.getElementById("delete").remove();
      line.textContent = t("deleted");
      for (const button of document.querySelectorAll("[data-grant] button")) button.remove();
      await followRevocation(revocation.revocation_id, el("span"));
    } catch (error) {
      if (error instanceof SignInNeeded) return signInAgain();
      line.textContent = t("failed");
    }
  });
}

document.addEventListener("DOMContentLoaded", start);
// A new token handed in later (the app signs in again) starts the page afresh.
window.addEventListener("hashchange", () => { if (location.hash.startsWith("#token=")) location.reload(); });
