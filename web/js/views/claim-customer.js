// Claim customer (SPEC rule 9): a known customer of the partner (GET /known-customers) -> friendly name ->
// a location eligible for this engagement (then POST /eligibility-checks for the customer's identifier)
// -> engagements -> hours and the proposed payment (variable payment, rule 8: a known MSX opportunity)
// -> contacts, pre-filled from the last claim -> check your answers ->
// POST /known-customers/{customer_id}/claims -> the claims created.

import { ApiError, get, post } from "../api.js";
import { h } from "../dom.js";
import { t } from "../i18n.js";
import { wizard } from "./wizard.js";
import {
  claimsCreated, contactBody, contactsStep, eligibility, engagementsStep, exitToCustomers, hoursStep, loadReference,
  locationStep, nameStep,
} from "./customer-steps.js";

const P = "claim";

async function load(params) {
  const [reference, known] = await Promise.all([loadReference(params.id), get("/known-customers")]);
  const customer = known.items.find((item) => item.customer_id === params.customerId);
  if (!customer) throw new ApiError({ status: 404, code: "not_found" });
  return { ...reference, customer };
}

/** The customer id in the API's path: encoded, but its "type:value" colon kept (the API takes it as is). */
function customerPath(customerId) {
  return encodeURIComponent(customerId).replace(/%3A/gi, ":");
}

function identifierOf(w) {
  return { type: w.ctx.customer.identifier.type, value: w.ctx.customer.identifier.value };
}

export const claimCustomerView = wizard({
  name: "claim",
  path: (params) => `/engagements/${encodeURIComponent(params.id)}/claim/${encodeURIComponent(params.customerId)}`,
  exit: exitToCustomers,
  title: () => t("action.claim_customer"),
  load,
  initial: (ctx, params) => {
    const last = ctx.customer.last_contact || {};
    const partner = ctx.customer.partner_contact || {};
    return {
      friendly_name: ctx.customer.name || "", location_id: "", preview: null, engagement_ids: [params.id], hours: "", quote: null,
      contacts: {
        customer: { name: last.name || "", email: last.email || "", phone: last.phone || "", language: last.language || "en" },
        partner: { name: partner.name || "", email: partner.email || "", phone: partner.phone || "" },
      },
    };
  },
  steps: [
    nameStep(P),
    locationStep(P, {
      usable: (location, w) => location.enrolled_in_mci && location.eligible_engagements.includes(w.params.id),
      affects: ["engagements", "hours"],
      check: async (w) => {
        w.data.preview = await eligibility(w, identifierOf(w));
        const eligible = w.data.preview.eligible.map((item) => item.engagement_id);
        w.data.engagement_ids = w.data.engagement_ids.filter((id) => eligible.includes(id));
      },
    }),
    engagementsStep(P, { affects: ["hours"] }),
    hoursStep(P, { opportunity: (w) => identifierOf(w).value }),
    contactsStep(P),
  ],
  review: {
    title: () => t("wizard.review.title"),
    button: () => t("action.claim_customer"),
    intro: (w) => h("p", { text: t("claim_customer.review.intro", {
      identifier: `${t(`identifier.${w.ctx.customer.identifier.type}`)}: ${w.ctx.customer.identifier.value}`,
    }) }),
  },
  submit: (w, key) => post(`/known-customers/${customerPath(w.params.customerId)}/claims`, {
    friendly_name: w.data.friendly_name.trim(),
    location_id: w.data.location_id,
    engagement_ids: w.data.engagement_ids,
    ...(w.data.quote ? { hours: Number(w.data.hours) } : {}),
    customer_contact: contactBody(w.data.contacts.customer, true),
    partner_contact: contactBody(w.data.contacts.partner, false),
  }, { idempotencyKey: key }),
  doneTitle: () => t("claim_customer.done.title"),
  done: (w) => claimsCreated(w, { title: t("claim_customer.done.title"), intro: t("add.done.intro", { name: w.data.friendly_name.trim() }) }),
});
