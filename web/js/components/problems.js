// Problems shown to a person: a sentence for each kind of failure, the GOV.UK error summary at the top
// of a form (links move focus to the field), and the message beside each field the API named.

import { h } from "../dom.js";
import { t, tOr } from "../i18n.js";

const SENTENCES = { 0: "error.network", 401: "error.unauthorized", 403: "error.forbidden", 404: "error.not_found",
  409: "error.conflict", 410: "error.gone", 422: "error.invalid", 429: "error.busy", 503: "error.busy" };

/** One sentence for the failure, followed by the API's own detail when it has one. */
export function problemSentence(error) {
  const key = SENTENCES[error.status] || "error.unexpected";
  return error.detail && error.status !== 0 ? `${t(key)} ${error.detail}` : t(key);
}

/**
 * One of a problem's errors[] ({field, message, code}) as a sentence in the chosen language: the
 * catalogue's `field_error.<field>.<code>` (the field path without [n]), else `field_error.<code>`, else
 * the API's own (English) message for a code the catalogue does not know.
 */
export function fieldErrorText(item) {
  const field = String(item.field || "").replace(/\[\d+\]/g, "");
  return tOr(`field_error.${field}.${item.code}`, tOr(`field_error.${item.code}`, item.message));
}

/** A notification for a failed read (role="alert"). */
export function problemBanner(error) {
  return h("div", { class: "notice notice--error", role: "alert" }, h("p", { text: problemSentence(error) }));
}

/**
 * The error summary (GOV.UK pattern): "There is a problem", the failure, and one link per named field, named
 * by its label. `fields` maps an API field name (errors[].field) to the id of its control (on the page).
 */
export function errorSummary(error, fields = {}) {
  const links = error.errors.map((item) => {
    const id = fields[item.field];
    // The field by its visible label, in the page's language; the API's own name only for a field not on the page.
    const label = id ? document.querySelector(`label[for="${CSS.escape(id)}"]`)?.textContent : "";
    const text = `${label || item.field}: ${fieldErrorText(item)}`;
    if (!id) return h("li", { text });
    return h("li", {}, h("a", {
      href: `#${id}`,
      onclick: (event) => {
        event.preventDefault(); // the hash is the router's: move focus instead
        document.getElementById(id)?.focus();
      },
    }, text));
  });
  const summary = h("div", { class: "error-summary", tabindex: "-1", "aria-labelledby": "error-summary-title" },
    h("div", { role: "alert" },
      h("h2", { id: "error-summary-title", class: "error-summary__title", text: t("error.summary_title") }),
      h("p", { text: problemSentence(error) }),
      links.length ? h("ul", { class: "error-summary__list" }, links) : null));
  return summary;
}

/** Show the field's message from `error` beside it (or clear it): aria-invalid and aria-describedby. */
export function markField(control, error, field) {
  const id = `${control.id}-error`;
  document.getElementById(id)?.remove();
  control.removeAttribute("aria-invalid");
  const described = (control.getAttribute("aria-describedby") || "").split(" ").filter((x) => x && x !== id);
  const found = error ? error.errors.find((item) => item.field === field) : null;
  const message = found ? fieldErrorText(found) : "";
  if (message) {
    control.setAttribute("aria-invalid", "true");
    described.push(id);
    control.before(h("p", { id, class: "field-error" }, h("span", { class: "visually-hidden", text: t("error.prefix") }), message));
  }
  if (described.length) control.setAttribute("aria-describedby", described.join(" "));
  else control.removeAttribute("aria-describedby");
}
