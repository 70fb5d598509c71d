// A claim's details (GET /claims/{id}): state, origin, location, deadlines, consent requests, contacts, the
// consent email (delivery, decision, emails that will not be sent: rule 29), payment, history, referral;
// Submit (optional notes) and Cancel (a reason, then a confirmation step). Each action attempt sends an
// Idempotency-Key: kept until a definite answer (none, or a 5xx: pressing again is a safe retry), new after a
// refusal. 409/410 are explained as sentences; errors[] appear beside their fields and in a summary. The notes
// and the reason are drafts of the signed-in user's (session.js): an ended session brings them back.

import { ApiError, get, post } from "../api.js";
import { h, keyAfter, newKey, replace, summaryList, table } from "../dom.js";
import { formatDateTime, formatNumber, formatUsd, plural, t, tOr } from "../i18n.js";
import { focusHeading, href, setTitle } from "../router.js";
import { buttonLink, field } from "../components/fields.js";
import { errorSummary, markField, problemBanner } from "../components/problems.js";
import { customersHref } from "./engagements.js";
import { contactSummary } from "./wizard.js";
import { drafts, session } from "../session.js";

const CANCELLABLE = ["pending_consent", "consent_requested", "consent_granted"];

function claimPath(claimId) {
  return `/claims/${encodeURIComponent(claimId)}`;
}

async function referralSection(claim) {
  if (!claim.referral_id) return null;
  const heading = h("h2", { text: t("claim.referral") });
  if (!session.can("referrals")) return [heading, h("p", { text: t("claim.referral_exists") })];
  try {
    const referral = await get(`/referrals/${encodeURIComponent(claim.referral_id)}`);
    return [heading, summaryList([
      [t("claim.referral_id"), referral.referral_id],
      [t("claim.referral_status"), referral.status ?? referral.state ?? ""],
      [t("claim.deal_size"), formatUsd(referral.deal_size_usd)],
      [t("claim.created_at"), formatDateTime(referral.created_at)],
    ])];
  } catch (error) {
    return [heading, problemBanner(error)];
  }
}

/** The service's own reasons (added, consent requested, deadline passed...) from the catalogue; a person's as typed. */
function historyReason(reason) {
  return reason ? tOr(`history_reason.${reason.replaceAll(" ", "_")}`, reason) : "";
}

function historyTable(claim) {
  return table({
    caption: t("claim.history"),
    captionHidden: true,
    columns: ["claim.history_at", "claim.history_actor", "claim.history_change", "claim.history_reason"].map((k) => t(k)),
    rows: (claim.history || []).map((entry) => [
      formatDateTime(entry.at),
      entry.actor,
      `${entry.from ? t(`state.${entry.from}`) : "—"} → ${t(`state.${entry.to}`)}`,
      historyReason(entry.reason),
    ]),
  });
}

/**
 * One action form: fields, a button, and (for cancel) a confirmation step. `send(body, key)` posts;
 * on success `done(claim)`. Problems: a summary at the top of the form and messages beside fields.
 */
function actionForm({ id, title, fieldSpec, button, confirm, send, done, draft }) {
  let key = newKey();
  const problems = h("div");
  const { group, control } = field(fieldSpec);
  const kept = drafts.get(draft);
  control.value = typeof kept === "string" ? kept : "";
  control.addEventListener("input", () => drafts.set(draft, control.value));
  const submit = h("button", { type: "submit", class: `button${id === "cancel" ? " button--warning" : ""}`, text: button });
  const form = h("form", { class: "form", id: `${id}-form`, novalidate: true, "aria-labelledby": `${id}-title` },
    h("h2", { id: `${id}-title`, text: title }), problems, group, submit);
  const attempt = async () => {
    submit.disabled = true;
    try {
      const claim = await send(control.value.trim(), key);
      done(claim);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      key = keyAfter(error, key);
      replace(problems, errorSummary(error, { [fieldSpec.name]: control.id }));
      markField(control, error, fieldSpec.name);
      problems.firstChild.focus();
    } finally {
      submit.disabled = false;
    }
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!confirm) {
      attempt();
      return;
    }
    // The confirmation step: the same form, asking once more, with a way back.
    const question = h("div", { class: "confirm", role: "group", "aria-labelledby": `${id}-confirm-text` },
      h("p", { id: `${id}-confirm-text`, class: "confirm__text", text: confirm.question }));
    const yes = h("button", { type: "button", class: "button button--warning", text: confirm.yes });
    const no = h("button", { type: "button", class: "button button--secondary", text: confirm.no });
    question.append(yes, no);
    submit.hidden = true;
    form.append(question);
    yes.focus();
    const close = () => {
      question.remove();
      submit.hidden = false;
    };
    no.addEventListener("click", () => {
      close();
      submit.focus();
    });
    yes.addEventListener("click", async () => {
      close();
      await attempt();
    });
  });
  return form;
}

/** Contacts: the customer's (with the language of its emails) and the partner's. */
function contactsSection(claim) {
  return [
    h("h2", { text: t("claim.contacts") }),
    summaryList([
      [t("wizard.contacts.customer"), contactSummary(claim.customer_contact, true)],
      [t("wizard.contacts.partner"), contactSummary(claim.partner_contact, false)],
    ]),
  ];
}

/** Each consent email as sent, with the terms it put to the customer (the evidence kept for the programme). */
function evidenceTable(evidence) {
  return table({
    caption: t("claim.evidence"),
    columns: ["claim.email_sent_at", "claim.email_to", "wizard.contact_language", "claim.evidence_terms"].map((k) => t(k)),
    rows: evidence.map((sent) => [
      formatDateTime(sent.sent_at),
      sent.to,
      t(`language.name.${sent.language}`),
      [
        sent.deal_size_usd != null ? `${t("claim.deal_size")}: ${formatUsd(sent.deal_size_usd)}` : null,
        sent.hours != null ? `${t("claim.hours")}: ${formatNumber(sent.hours)}` : null,
        sent.proposed_payment_usd != null ? `${t("claim.proposed_payment")}: ${formatUsd(sent.proposed_payment_usd)}` : null,
      ].filter(Boolean).join("; "),
    ]),
  });
}

/** The consent email: where the last one stands, the customer's decision, and emails that will not be sent. */
function consentEmailSection(claim) {
  const email = claim.consent_email;
  const decision = claim.consent_decision;
  const failures = claim.email_failures || [];
  const evidence = claim.consent_evidence || [];
  if (!email && !decision && !failures.length && !evidence.length) return null;
  return [
    h("h2", { text: t("claim.consent_email") }),
    failures.length ? h("div", { class: "notice notice--error" },
      h("p", { text: t("claim.email_failures") }),
      h("ul", {}, failures.map((failure) => h("li", {
        text: t(`email_failure.${failure.reason}`, { to: failure.to, at: formatDateTime(failure.at) }) })))) : null,
    summaryList([
      [t("claim.email_to"), email ? email.to : null],
      [t("claim.email_status"), email ? t(`email_status.${email.status}`) : null],
      [t("claim.email_sent_at"), email && email.sent_at ? formatDateTime(email.sent_at) : null],
      [t("claim.consent_decision"), decision
        ? t("claim.decision_at", { decision: t(`decision.${decision.decision}`), at: formatDateTime(decision.at) }) : null],
    ]),
    evidence.length ? evidenceTable(evidence) : null,
  ];
}

export async function claimView({ params, query, main, isCurrent, notice }) {
  const claimId = params.id;
  let claim;
  try {
    claim = await get(claimPath(claimId));
  } catch (error) {
    if (!isCurrent()) return;
    setTitle(t("claim.title"));
    replace(main, h("h1", { text: t("claim.title") }), problemBanner(error));
    return;
  }
  if (!isCurrent()) return;
  setTitle(`${t("claim.title")}: ${claim.friendly_name}`);
  const rerender = (message) => claimView({ params, query: {}, main, isCurrent, notice: message });
  const details = summaryList([
    [t("claim.state"), t(`state.${claim.state}`)],
    [t("claim.claim_id"), claim.claim_id],
    [t("claim.origin"), t(`origin.${claim.origin}`)],
    [t("wizard.location.label"), claim.location_id],
    [t("customers.identifier"), `${t(`identifier.${claim.identifier.type}`)}: ${claim.identifier.value}`],
    [t("add.mismatch.label"), claim.tenant_mismatch_reason],
    [t("claim.created_at"), formatDateTime(claim.created_at)],
    [t("claim.updated_at"), formatDateTime(claim.updated_at)],
    [t("claim.consent_deadline"), formatDateTime(claim.consent_deadline)],
    [t("claim.submission_deadline"), formatDateTime(claim.submission_deadline)],
    [t("claim.consent_requests"), claim.consent_requests?.last_sent_at
      ? `${plural("claim.consent_sent", claim.consent_requests.count)}, ${t("claim.consent_last", { last: formatDateTime(claim.consent_requests.last_sent_at) })}`
      : plural("claim.consent_sent", claim.consent_requests?.count ?? 0)],
  ]);
  const payment = summaryList([
    [t("claim.proposed_payment"), formatUsd(claim.proposed_payment_usd)],
    [t("claim.hours"), claim.hours === null || claim.hours === undefined ? null : formatNumber(claim.hours)],
    [t("claim.deal_size"), formatUsd(claim.deal_size_usd)],
  ]);
  const forms = [];
  const draft = (action) => `claim.${claimId}.${action}`;
  const sent = (message) => {
    ["submit", "cancel"].forEach((action) => drafts.remove(draft(action))); // the claim moved on: both are done with
    return rerender(message);
  };
  if (session.can("claims")) {
    if (claim.state === "pending_consent" || claim.state === "consent_requested") {
      const label = t(claim.state === "pending_consent" ? "action.send_consent" : "action.resend_consent");
      forms.push(h("p", {}, buttonLink(href(`${claimPath(claimId)}/consent`), label)));
    }
    if (claim.state === "consent_granted") {
      forms.push(actionForm({
        id: "submit",
        title: t("claim.submit_title"),
        fieldSpec: { id: "submit-notes", name: "notes", label: t("claim.notes"), hint: t("claim.notes_hint"), control: "textarea", rows: "3" },
        button: t("claim.submit"),
        send: (notes, key) => post(`${claimPath(claimId)}/submission`, notes ? { notes } : {}, { idempotencyKey: key }),
        done: () => sent(t("claim.submitted")),
        draft: draft("submit"),
      }));
    }
    if (CANCELLABLE.includes(claim.state)) {
      forms.push(actionForm({
        id: "cancel",
        title: t("claim.cancel_title"),
        fieldSpec: { id: "cancel-reason", name: "reason", label: t("claim.reason"), hint: t("claim.reason_hint"), control: "textarea", rows: "3" },
        button: t("claim.cancel"),
        confirm: { question: t("claim.cancel_confirm"), yes: t("claim.cancel_yes"), no: t("claim.cancel_no") },
        send: (reason, key) => post(`${claimPath(claimId)}/cancellation`, { reason }, { idempotencyKey: key }),
        done: () => sent(t("claim.cancelled")),
        draft: draft("cancel"),
      }));
    }
  }
  const referral = await referralSection(claim);
  if (!isCurrent()) return;
  replace(main,
    h("p", { class: "caption-l", text: t("claim.title") }),
    h("h1", { text: claim.friendly_name }),
    notice ? h("div", { class: "notice notice--success", role: "status" }, h("p", { text: notice })) : null,
    h("p", {}, h("a", { href: customersHref(claim.engagement_id, claim.state === "completed" ? "complete" : "eligible"), text: t("claim.back_to_customers") })),
    details,
    contactsSection(claim),
    consentEmailSection(claim),
    h("h2", { text: t("claim.payment") }), payment,
    referral,
    forms,
    h("h2", { text: t("claim.history") }), historyTable(claim));
  // Arriving from a row's Submit or Cancel link: that form's field takes focus instead of the heading.
  const form = ["submit", "cancel"].includes(query.action) ? document.getElementById(`${query.action}-form`) : null;
  form?.querySelector("textarea")?.setAttribute("data-focus", "");
  if (notice) focusHeading(main);
}
