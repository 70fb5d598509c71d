// Send (or resend) the customer consent email (SPEC rules 13-14): the contacts, pre-filled and editable ->
// the estimated deal size in USD (first request only; read-only once locked) -> check the details and
// accept the disclaimer -> POST /claims/{id}/consent-requests. Before a resend the page says how many
// resends remain (5 per claim) and when the next one is allowed (once an hour after the last).

import { get, post } from "../api.js";
import { h, summaryList } from "../dom.js";
import { formatDateTime, formatNumber, formatUsd, plural, t } from "../i18n.js";
import { choices, input, wizard } from "./wizard.js";
import { contactBody, contactsStep } from "./customer-steps.js";

const P = "consent";
export const MAX_RESENDS = 5;
const RESEND_INTERVAL_MS = 60 * 60 * 1000;
const AWAITING = ["pending_consent", "consent_requested"];

const claimHref = (params) => `#/claims/${encodeURIComponent(params.id)}`;
const first = (w) => w.ctx.claim.state === "pending_consent";

/** {remaining, nextAt}: resends left and when the next is allowed (null when now). */
export function resendAllowance(requests, now = Date.now()) {
  const count = requests?.count ?? 0;
  const remaining = Math.max(0, MAX_RESENDS - Math.max(0, count - 1));
  const last = requests?.last_sent_at ? Date.parse(requests.last_sent_at) : NaN;
  const nextAt = Number.isFinite(last) && last + RESEND_INTERVAL_MS > now ? new Date(last + RESEND_INTERVAL_MS).toISOString() : null;
  return { remaining, nextAt };
}

function resendNotice(w) {
  if (first(w)) return null;
  const { remaining, nextAt } = resendAllowance(w.ctx.claim.consent_requests);
  return h("div", { class: "notice", role: "note", id: `${P}-resend-info` },
    h("p", { text: t("consent.resend.remaining", { count: plural("consent.resends", remaining) }) }),
    h("p", { text: remaining === 0 ? t("consent.resend.none_left") : nextAt
      ? t("consent.resend.next_at", { time: formatDateTime(nextAt) }) : t("consent.resend.now") }));
}

function dealStep() {
  const id = `${P}-deal-size`;
  return {
    id: "deal",
    when: first,
    title: () => t("consent.deal.title"),
    fields: { deal_size_usd: id },
    build: (w) => [
      input({ w, field: "deal_size_usd", id, label: t("consent.deal.label"), hint: t("consent.deal.hint"), inputmode: "decimal",
        class: "control control--input control--narrow", value: w.data.deal_size_usd, autocomplete: "off" }),
      h("p", { class: "hint", text: t("consent.deal.locked_hint") }),
    ],
    read: (values) => ({ deal_size_usd: values[id] }),
    validate: (w) => {
      const text = String(w.data.deal_size_usd || "").trim().replace(/,/g, "");
      if (!text) return [{ field: "deal_size_usd", message: t("consent.deal.missing") }];
      return /^\d+(\.\d{1,2})?$/.test(text) && Number(text) > 0 ? [] : [{ field: "deal_size_usd", message: t("consent.deal.invalid") }];
    },
    summary: (w) => [[t("consent.deal.label"), formatUsd(dealSize(w))]],
  };
}

function dealSize(w) {
  return Number(String(w.data.deal_size_usd || "").trim().replace(/,/g, ""));
}

function title(w) {
  return t(w && !first(w) ? "action.resend_consent" : "action.send_consent");
}

export const consentView = wizard({
  name: "consent",
  path: (params) => `/claims/${encodeURIComponent(params.id)}/consent`,
  exit: claimHref,
  title,
  load: async (params) => ({ claim: await get(`/claims/${encodeURIComponent(params.id)}`) }),
  initial: (ctx) => {
    const customer = ctx.claim.customer_contact || {};
    const partner = ctx.claim.partner_contact || {};
    return {
      contacts: {
        customer: { name: customer.name || "", email: customer.email || "", phone: customer.phone || "", language: customer.language || "en" },
        partner: { name: partner.name || "", email: partner.email || "", phone: partner.phone || "" },
      },
      deal_size_usd: "", disclaimer: false,
    };
  },
  gate: (w) => (AWAITING.includes(w.ctx.claim.state) ? null : [
    h("h1", { text: title(w) }),
    h("div", { class: "notice", role: "note" }, h("p", { text: t("consent.not_awaiting", { state: t(`state.${w.ctx.claim.state}`) }) })),
    h("p", {}, h("a", { href: claimHref(w.params), text: t("consent.back_to_claim") })),
  ]),
  steps: [
    { ...contactsStep(P), build: (w) => [resendNotice(w), ...contactsStep(P).build(w)] },
    dealStep(),
  ],
  review: {
    title: () => t("consent.review.title"),
    button: (w) => title(w),
    intro: (w) => [
      resendNotice(w),
      h("p", { text: t("consent.review.intro", { name: w.ctx.claim.friendly_name }) }),
      first(w) ? null : summaryList([[t("consent.deal.label"), `${formatUsd(w.ctx.claim.deal_size_usd)} (${t("consent.deal.locked")})`]]),
    ],
    extra: (w) => [
      h("h2", { text: t("consent.disclaimer.title") }),
      h("p", { id: `${P}-disclaimer-text`, text: t("consent.disclaimer.text") }),
      choices({ w, field: "disclaimer_accepted", id: `${P}-disclaimer`, type: "checkbox", legend: t("consent.disclaimer.legend"),
        legendClass: "visually-hidden", checked: w.data.disclaimer ? "yes" : "", options: [{ value: "yes", label: t("consent.disclaimer.accept") }] }),
    ],
    validate: (values, w) => {
      w.data.disclaimer = (values[`${P}-disclaimer`] || []).includes("yes");
      return w.data.disclaimer ? [] : [{ field: "disclaimer_accepted", message: t("consent.disclaimer.missing") }];
    },
  },
  reviewFields: { disclaimer_accepted: `${P}-disclaimer` },
  submit: (w, key) => {
    const body = {
      customer_contact: contactBody(w.data.contacts.customer, true),
      partner_contact: contactBody(w.data.contacts.partner, false),
      disclaimer_accepted: true,
    };
    if (first(w)) body.deal_size_usd = dealSize(w);
    return post(`/claims/${encodeURIComponent(w.params.id)}/consent-requests`, body, { idempotencyKey: key });
  },
  doneTitle: (w) => t("consent.done.title"),
  done: (w) => [
    h("div", { class: "panel" },
      h("h1", { class: "panel__title", text: t("consent.done.title") }),
      h("p", { text: t("consent.done.intro", { email: w.state.result.customer_contact?.email || "", deadline: formatDateTime(w.state.result.consent_deadline) }) })),
    h("p", { text: t("consent.done.count", { count: formatNumber(w.state.result.consent_requests?.count ?? 1) }) }),
    h("p", {}, h("a", { href: claimHref(w.params), text: t("consent.back_to_claim") })),
  ],
});
