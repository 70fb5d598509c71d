// Add customer (SPEC rule 7, the source page's steps in order): friendly name -> location (enrolled ones)
// -> identifier type and value (POST /eligibility-checks) -> engagements -> hours and the proposed payment
// (variable payment) -> contacts -> the tenant mismatch reason (when asked) -> check your answers ->
// POST /customers -> the claims created.

import { post } from "../api.js";
import { h } from "../dom.js";
import { t } from "../i18n.js";
import { choices, input, required, wizard } from "./wizard.js";
import {
  claimsCreated, contactBody, contactsStep, eligibility, emptyContacts, engagementsStep, exitToCustomers, hoursStep,
  loadReference, locationStep, nameStep,
} from "./customer-steps.js";

const P = "add";
// The API's field paths (errors[].field) for the identifier; backquoted, being paths and not catalogue keys.
const TYPE = `identifier.type`;
const VALUE = `identifier.value`;

function identifierStep() {
  const typeId = `${P}-identifier-type`;
  const valueId = `${P}-identifier-value`;
  return {
    id: "identifier",
    title: () => t("add.identifier.title"),
    fields: { [TYPE]: typeId, [VALUE]: valueId, identifier: valueId },
    affects: ["engagements", "hours", "contacts", "mismatch"],
    build: (w) => {
      const types = w.ctx.engagement.identifier_types;
      return [
        choices({ w, field: TYPE, id: typeId, legend: t("add.identifier.type"),
          hint: t(w.ctx.engagement.payment_type === "variable" ? "add.identifier.type_hint.variable" : "add.identifier.type_hint.fixed"),
          options: types.map((type) => ({ value: type, label: t(`identifier.${type}`) })), checked: w.data.identifier_type }),
        input({ w, field: VALUE, id: valueId, label: t("add.identifier.value"), hint: t("add.identifier.value_hint"),
          value: w.data.identifier_value, autocomplete: "off", spellcheck: "false" }),
      ];
    },
    read: (values) => ({ identifier_type: values[typeId] ?? "", identifier_value: values[valueId] }),
    validate: (w) => required({
      [TYPE]: [w.data.identifier_type, t("add.identifier.missing_type")],
      [VALUE]: [w.data.identifier_value, t("add.identifier.missing_value")],
    }),
    check: async (w) => {
      w.data.preview = await eligibility(w, identifier(w));
      const eligible = w.data.preview.eligible.map((item) => item.engagement_id);
      w.data.engagement_ids = (w.data.engagement_ids.length ? w.data.engagement_ids : [w.params.id]).filter((id) => eligible.includes(id));
      w.data.mismatch = false;
    },
    summary: (w) => [[t("customers.identifier"), `${t(`identifier.${w.data.identifier_type}`)}: ${w.data.identifier_value.trim()}`]],
  };
}

function identifier(w) {
  return { type: w.data.identifier_type, value: w.data.identifier_value.trim() };
}

/** Rule 4: a tenant id whose customer email domain has another (or no) tenant needs a reason. */
function mismatchStep() {
  const id = `${P}-mismatch-reason`;
  return {
    id: "mismatch",
    when: (w) => w.data.mismatch === true,
    title: () => t("add.mismatch.title"),
    fields: { tenant_mismatch_reason: id },
    build: (w) => [
      h("p", { text: t("add.mismatch.intro", { email: w.data.contacts.customer.email }) }),
      input({ w, field: "tenant_mismatch_reason", id, control: "textarea", rows: "4", label: t("add.mismatch.label"),
        hint: t("add.mismatch.hint"), value: w.data.tenant_mismatch_reason }),
    ],
    read: (values) => ({ tenant_mismatch_reason: values[id] }),
    validate: (w) => required({ tenant_mismatch_reason: [w.data.tenant_mismatch_reason, t("add.mismatch.missing")] }),
    summary: (w) => [[t("add.mismatch.label"), w.data.tenant_mismatch_reason]],
  };
}

function body(w) {
  const data = w.data;
  const answer = {
    friendly_name: data.friendly_name.trim(),
    location_id: data.location_id,
    identifier: identifier(w),
    engagement_ids: data.engagement_ids,
    customer_contact: contactBody(data.contacts.customer, true),
    partner_contact: contactBody(data.contacts.partner, false),
  };
  if (data.mismatch && data.tenant_mismatch_reason.trim()) answer.tenant_mismatch_reason = data.tenant_mismatch_reason.trim();
  if (data.quote) answer.hours = Number(data.hours);
  return answer;
}

export const addCustomerView = wizard({
  name: "add",
  path: (params) => `/engagements/${encodeURIComponent(params.id)}/add`,
  exit: exitToCustomers,
  title: () => t("action.add_customer"),
  load: (params) => loadReference(params.id),
  initial: (ctx) => ({
    friendly_name: "", location_id: "", identifier_type: ctx.engagement.identifier_types.length === 1 ? ctx.engagement.identifier_types[0] : "",
    identifier_value: "", preview: null, engagement_ids: [], hours: "", quote: null, contacts: emptyContacts(),
    mismatch: false, tenant_mismatch_reason: "",
  }),
  steps: [
    nameStep(P),
    locationStep(P, { usable: (location) => location.enrolled_in_mci, affects: ["identifier", "engagements", "hours"] }),
    identifierStep(),
    engagementsStep(P, { affects: ["hours"] }),
    hoursStep(P, { opportunity: (w) => identifier(w).value }),
    contactsStep(P, {
      affects: ["mismatch"],
      check: async (w) => {
        if (w.data.identifier_type !== "tenant_id") return;
        const preview = await eligibility(w, identifier(w), w.data.contacts.customer.email.trim());
        w.data.mismatch = preview.tenant_mismatch_reason_required === true;
      },
    }),
    mismatchStep(),
  ],
  review: {
    title: () => t("wizard.review.title"),
    button: () => t("action.add_customer"),
    intro: () => h("p", { text: t("add.review.intro") }),
  },
  onProblem: (error, w) => {
    if (error.code === "tenant_mismatch_reason_required") w.data.mismatch = true;
  },
  submit: (w, key) => post("/customers", body(w), { idempotencyKey: key }),
  doneTitle: () => t("add.done.title"),
  done: (w) => claimsCreated(w, { title: t("add.done.title"), intro: t("add.done.intro", { name: w.data.friendly_name.trim() }) }),
});
