// The question pages Add customer, Claim customer and the consent email share: friendly name, location,
// engagements (the eligibility preview: eligible ones to choose, ineligible ones with their reasons),
// hours and the proposed payment (variable payment), and the two contacts.

import { ApiError, get, post } from "../api.js";
import { h, summaryList } from "../dom.js";
import { currentLanguage, formatNumber, formatUsd, t } from "../i18n.js";
import { customersHref } from "./engagements.js";
import { reasonSentence } from "./customers.js";
import { choices, contactSummary, input, required } from "./wizard.js";

const enc = encodeURIComponent;

/** What the customer wizards read once per run: the engagements open to the caller and its locations. */
export async function loadReference(engagementId) {
  const [engagements, locations] = await Promise.all([get("/engagements"), get("/locations")]);
  const engagement = engagements.items.find((item) => item.engagement_id === engagementId);
  if (!engagement) throw new ApiError({ status: 404, code: "not_found" });
  return { engagement, engagements: engagements.items, locations: locations.items };
}

export const exitToCustomers = (params) => customersHref(params.id, "eligible");

export function engagementById(w, id) {
  return w.ctx.engagements.find((item) => item.engagement_id === id);
}

export function isVariable(w) {
  return w.ctx.engagement.payment_type === "variable";
}

export function emptyContacts(language = currentLanguage()) {
  return { customer: { name: "", email: "", phone: "", language }, partner: { name: "", email: "", phone: "" } };
}

/** A contact as the API takes it: the optional phone left out when empty. */
export function contactBody(contact, withLanguage) {
  const body = { name: contact.name.trim(), email: contact.email.trim() };
  if (contact.phone && contact.phone.trim()) body.phone = contact.phone.trim();
  if (withLanguage) body.language = contact.language || "en";
  return body;
}

export function nameStep(prefix) {
  return {
    id: "name",
    title: () => t("wizard.name.title"),
    fields: { friendly_name: `${prefix}-friendly-name` },
    build: (w) => input({ w, field: "friendly_name", id: `${prefix}-friendly-name`, label: t("wizard.name.label"),
      hint: t("wizard.name.hint"), value: w.data.friendly_name, autocomplete: "off", spellcheck: "false" }),
    read: (values) => ({ friendly_name: values[`${prefix}-friendly-name`] }),
    validate: (w) => required({ friendly_name: [w.data.friendly_name, t("wizard.name.missing")] }),
    summary: (w) => [[t("wizard.name.label"), w.data.friendly_name]],
  };
}

function locationLabel(location) {
  return `${location.name} (${location.location_id})`;
}

/** Location: `usable(location, w)` says which are offered (enrolled ones; for a claim, eligible ones too). */
export function locationStep(prefix, { usable, affects, check }) {
  const id = `${prefix}-location`;
  const offered = (w) => w.ctx.locations.filter((location) => usable(location, w));
  return {
    id: "location",
    title: () => t("wizard.location.title"),
    fields: { location_id: id },
    affects,
    build: (w) => (offered(w).length
      ? choices({ w, field: "location_id", id, legend: t("wizard.location.legend"), hint: t("wizard.location.hint"),
        options: offered(w).map((location) => ({ value: location.location_id, label: locationLabel(location) })),
        checked: w.data.location_id })
      : h("div", { class: "notice", role: "note" }, h("p", { text: t("wizard.location.none") }))),
    read: (values) => ({ location_id: values[id] ?? "" }),
    validate: (w) => required({ location_id: [w.data.location_id, t("wizard.location.missing")] }),
    check,
    summary: (w) => {
      const location = w.ctx.locations.find((item) => item.location_id === w.data.location_id);
      return [[t("wizard.location.label"), location ? locationLabel(location) : w.data.location_id]];
    },
  };
}

/** POST /eligibility-checks for the wizard's location and identifier (and customer email when given). */
export function eligibility(w, identifier, customerEmail) {
  const body = { location_id: w.data.location_id, identifier };
  if (customerEmail) body.customer_email = customerEmail;
  return post("/eligibility-checks", body);
}

function ineligibleList(preview) {
  if (!preview.ineligible.length) return null;
  return [
    h("h2", { text: t("wizard.engagements.ineligible") }),
    h("ul", { class: "ineligible" }, preview.ineligible.map((item) => h("li", {},
      h("strong", { text: item.name }),
      h("ul", { class: "reasons" }, item.reasons.map((reason) => h("li", { text: reasonSentence(reason) })))))),
  ];
}

/** Engagements: the preview's eligible ones to choose (one only for variable payment), the others with reasons. */
export function engagementsStep(prefix, { affects } = {}) {
  const id = `${prefix}-engagements`;
  const single = (w) => (w.data.preview?.eligible || []).some((item) => item.payment_type === "variable");
  return {
    id: "engagements",
    title: () => t("wizard.engagements.title"),
    fields: { engagement_ids: id },
    affects,
    build: (w) => {
      const preview = w.data.preview || { eligible: [], ineligible: [] };
      const options = preview.eligible.map((item) => ({ value: item.engagement_id, label: item.name,
        hint: t(`payment_type.${item.payment_type}`) }));
      return [
        options.length
          ? choices({ w, field: "engagement_ids", id, type: single(w) ? "radio" : "checkbox",
            legend: t("wizard.engagements.eligible"), legendClass: "legend legend--h2",
            hint: t(single(w) ? "wizard.engagements.hint_one" : "wizard.engagements.hint_many"),
            options, checked: w.data.engagement_ids })
          : h("div", { class: "notice", role: "note" }, h("p", { text: t("wizard.engagements.none") })),
        ineligibleList(preview),
      ];
    },
    read: (values, w) => {
      const chosen = values[id];
      return { engagement_ids: Array.isArray(chosen) ? chosen : chosen ? [chosen] : [] };
    },
    validate: (w) => {
      const eligible = new Set((w.data.preview?.eligible || []).map((item) => item.engagement_id));
      w.data.engagement_ids = w.data.engagement_ids.filter((engagementId) => eligible.has(engagementId));
      return required({ engagement_ids: [w.data.engagement_ids, t("wizard.engagements.missing")] });
    },
    summary: (w) => [[t("wizard.engagements.label"), h("ul", { class: "plain-list" },
      w.data.engagement_ids.map((engagementId) => h("li", { text: engagementById(w, engagementId)?.name || engagementId })))]],
  };
}

/** Variable payment: the hours (a whole number in the engagement's range), then POST /payment-quotes. */
export function hoursStep(prefix, { opportunity }) {
  const id = `${prefix}-hours`;
  const chosen = (w) => engagementById(w, w.data.engagement_ids[0]);
  return {
    id: "hours",
    when: (w) => chosen(w)?.payment_type === "variable",
    title: () => t("wizard.hours.title"),
    fields: { hours: id },
    build: (w) => {
      const rules = chosen(w).payment_rules || {};
      return [
        input({ w, field: "hours", id, label: t("wizard.hours.label"), inputmode: "numeric", class: "control control--input control--narrow",
          hint: t("wizard.hours.hint", { min: formatNumber(rules.min_hours), max: formatNumber(rules.max_hours) }), value: w.data.hours }),
        h("p", { class: "hint", text: t("wizard.hours.locked") }),
      ];
    },
    read: (values) => ({ hours: values[id] }),
    validate: (w) => {
      const missing = required({ hours: [w.data.hours, t("wizard.hours.missing")] });
      if (missing.length) return missing;
      return /^\s*\d+\s*$/.test(w.data.hours) ? [] : [{ field: "hours", message: t("wizard.hours.whole") }];
    },
    check: async (w) => {
      w.data.quote = await post("/payment-quotes", { engagement_id: w.data.engagement_ids[0], location_id: w.data.location_id,
        msx_opportunity_id: opportunity(w), hours: Number(w.data.hours) });
    },
    summary: (w) => [
      [t("wizard.hours.label"), formatNumber(Number(w.data.hours))],
      w.data.quote ? [t("claim.proposed_payment"), quoteDetails(w.data.quote)] : null,
    ],
  };
}

// The term of rule 8's min() that set the payment (the quote's breakdown.limited_by).
const LIMITED_BY = {
  hours: "wizard.quote.limit.hours",
  max_payment: "wizard.quote.limit.max_payment",
  opportunity_share: "wizard.quote.limit.opportunity_share",
};

/** The proposed payment and how it was reached (rule 8). */
export function quoteDetails(quote) {
  const b = quote.breakdown;
  return [
    h("strong", { class: "quote__amount", text: formatUsd(quote.proposed_payment_usd) }),
    summaryList([
      [t("wizard.quote.hours_amount"), t("wizard.quote.hours_formula", { hours: formatNumber(b.hours), rate: formatUsd(b.hourly_rate_usd), amount: formatUsd(b.hours_amount_usd) })],
      [t("wizard.quote.max_payment"), formatUsd(b.max_payment_usd)],
      [t("wizard.quote.opportunity_cap"), t("wizard.quote.cap_formula", { share: formatNumber(b.max_opportunity_share * 100), value: formatUsd(b.opportunity_value_usd), amount: formatUsd(b.opportunity_cap_usd) })],
      [t("wizard.quote.limited_by"), t(LIMITED_BY[b.limited_by] || "wizard.quote.limit.hours")],
    ]),
  ];
}

function contactFields(w, prefix, who, withLanguage) {
  const contact = w.data.contacts[who];
  const field = `${who}_contact`;
  const id = (name) => `${prefix}-${who}-${name}`;
  return h("fieldset", { class: "fieldset" },
    h("legend", { class: "legend legend--h2", text: t(who === "customer" ? "wizard.contacts.customer" : "wizard.contacts.partner") }),
    input({ w, field: `${field}.name`, id: id("name"), label: t("wizard.contact_name"), value: contact.name, autocomplete: who === "partner" ? "name" : "off" }),
    input({ w, field: `${field}.email`, id: id("email"), label: t("wizard.contact_email"), type: "email", value: contact.email, autocomplete: who === "partner" ? "email" : "off", spellcheck: "false" }),
    input({ w, field: `${field}.phone`, id: id("phone"), label: t("wizard.contact_phone_optional"), type: "tel", value: contact.phone, autocomplete: who === "partner" ? "tel" : "off" }),
    withLanguage ? choices({ w, field: `${field}.language`, id: id("language"), legend: t("wizard.contact_language"),
      hint: t("wizard.contacts.language_hint"), checked: contact.language,
      options: ["en", "es"].map((language) => ({ value: language, label: t(`language.name.${language}`) })) }) : null);
}

/** Customer contact (with the language of its emails) and partner contact, on one page. */
export function contactsStep(prefix, { affects, check } = {}) {
  const id = (who, name) => `${prefix}-${who}-${name}`;
  const fields = {};
  for (const who of ["customer", "partner"]) {
    for (const name of ["name", "email", "phone", ...(who === "customer" ? ["language"] : [])]) fields[`${who}_contact.${name}`] = id(who, name);
  }
  return {
    id: "contacts",
    title: () => t("wizard.contacts.title"),
    fields,
    affects,
    check,
    build: (w) => [contactFields(w, prefix, "customer", true), contactFields(w, prefix, "partner", false)],
    read: (values, w) => ({
      contacts: {
        customer: { name: values[id("customer", "name")], email: values[id("customer", "email")], phone: values[id("customer", "phone")],
          language: values[id("customer", "language")] || w.data.contacts.customer.language },
        partner: { name: values[id("partner", "name")], email: values[id("partner", "email")], phone: values[id("partner", "phone")] },
      },
    }),
    validate: (w) => {
      const { customer, partner } = w.data.contacts;
      return required({
        "customer_contact.name": [customer.name, t("wizard.contacts.missing_name")],
        "customer_contact.email": [customer.email, t("wizard.contacts.missing_email")],
        "partner_contact.name": [partner.name, t("wizard.contacts.missing_name")],
        "partner_contact.email": [partner.email, t("wizard.contacts.missing_email")],
      });
    },
    summary: (w) => [
      [t("wizard.contacts.customer"), contactSummary(w.data.contacts.customer, true)],
      [t("wizard.contacts.partner"), contactSummary(w.data.contacts.partner, false)],
    ],
  };
}

/** The confirmation: the claims created, each linking to its details, and the way back. */
export function claimsCreated(w, { title, intro }) {
  const claims = w.state.result.claims || [];
  return [
    h("div", { class: "panel" },
      h("h1", { class: "panel__title", text: title }),
      h("p", { text: intro })),
    h("h2", { text: t("wizard.done.claims") }),
    h("ul", { class: "plain-list" }, claims.map((claim) => h("li", {},
      h("a", { href: `#/claims/${enc(claim.claim_id)}` }, engagementById(w, claim.engagement_id)?.name || claim.engagement_id),
      h("span", { class: "secondary", text: ` (${claim.claim_id})` })))),
    h("p", { text: t("wizard.done.next") }),
    h("p", {}, h("a", { href: customersHref(w.params.id, "eligible"), text: t("claim.back_to_customers") })),
  ];
}
