// The wizard engine behind Add customer, Claim customer and the consent email (GOV.UK question pages):
// one question per step, a Back link, an error summary at the top and each message beside its field,
// a "check your answers" review step with Change links, then one commit and a confirmation.
//
// Each step is its own address, `#<path>?run=<run>&step=<id>`, so the browser's Back and Forward move
// between steps. What was typed is a draft of the signed-in user's (session.js `drafts`: this tab's
// sessionStorage, `mci.draft.wizard.<name>.<run>`, never the token, only its owner reads it back) saved on
// every keystroke, so nothing is lost on Back. One Idempotency-Key per run:
// kept when the commit got no answer (a retry is safe), replaced only after the API answered a refusal.

import { ApiError } from "../api.js";
import { h, keyAfter, newKey, replace, summaryList } from "../dom.js";
import { t, tOr } from "../i18n.js";
import { href, navigate, setTitle } from "../router.js";
import { drafts, session } from "../session.js";
import { fieldErrorText, problemBanner, problemSentence } from "../components/problems.js";

const contexts = new Map(); // run -> what load() read (engagements, locations, ...), for this page's life

// Problems without errors[] that still belong to one field (the API's `field`, else by their code).
const CODE_FIELDS = {
  tenant_mismatch_reason_required: "tenant_mismatch_reason",
  active_claim_limit_reached: "engagement_ids",
  duplicate_claim: "engagement_ids",
  engagement_closed: "engagement_ids",
  criteria_not_met: "engagement_ids",
  location_not_enrolled: "location_id",
  location_not_eligible: "location_id",
  identifier_type_not_accepted: `identifier.type`, // API field paths, not catalogue keys
  customer_not_found: `identifier.value`,
  deal_size_locked: "deal_size_usd",
};

function storageKey(name, run) {
  return `wizard.${name}.${run}`;
}

function loadState(name, run) {
  const state = run ? drafts.get(storageKey(name, run)) : null;
  return state && typeof state === "object" ? state : null;
}

function saveState(name, state) {
  drafts.set(storageKey(name, state.run), state);
}

/** The problem as the wizard keeps it: a headline and field errors [{field, message}]. */
export function toProblem(error) {
  let errors = error.errors.map((item) => ({ field: item.field, message: fieldErrorText(item), api: true }));
  const field = error.field || CODE_FIELDS[error.code];
  if (!errors.length && field) errors = [{ field, message: tOr(`wizard.code.${error.code}`, error.detail) }];
  const headline = error.code === "validation_error" ? t("wizard.fix") : tOr(`wizard.code.${error.code}`, problemSentence(error));
  return { status: error.status, code: error.code, headline, errors };
}

/** A problem found in the browser before anything was sent: [{field, message}]. */
function localProblem(errors) {
  return { status: 422, code: "validation_error", headline: t("wizard.fix"), errors };
}

/** Field helpers for a step's build: the message for an API field path, or "". */
function messageFor(problem, field) {
  if (!problem) return "";
  const found = problem.errors.find((item) => item.field === field || item.field.startsWith(`${field}.`));
  return found ? found.message : "";
}

function errorLine(id, message) {
  return message ? h("p", { id, class: "field-error" }, h("span", { class: "visually-hidden", text: t("error.prefix") }), message) : null;
}

/** A labelled text control with its hint and error: input({w, field, id, label, hint, value, control, ...}). */
export function input({ w, field, id, label, hint, value = "", control = "input", ...attributes }) {
  const message = w.message(field);
  const hintId = hint ? `${id}-hint` : null;
  const errorId = message ? `${id}-error` : null;
  const element = h(control, {
    id, name: id, class: `control control--${control}`, "aria-invalid": message ? "true" : null,
    "aria-describedby": [hintId, errorId].filter(Boolean).join(" ") || null, ...attributes,
  });
  element.value = value ?? "";
  return h("div", { class: `form-group${message ? " form-group--error" : ""}` },
    h("label", { for: id, class: "label", text: label }),
    hint ? h("p", { id: hintId, class: "hint", text: hint }) : null,
    errorLine(errorId, message), element);
}

/**
 * Radios or checkboxes in a fieldset: choices({w, field, id, legend, hint, type, options: [{value, label, hint}],
 * checked: value or [values]}). The first box carries `id` (the error summary's link target).
 */
export function choices({ w, field, id, legend, hint, type = "radio", options, checked, legendClass = "legend" }) {
  const message = w.message(field);
  const hintId = hint ? `${id}-hint` : null;
  const errorId = message ? `${id}-error` : null;
  const on = Array.isArray(checked) ? checked : [checked];
  return h("fieldset", { class: `fieldset${message ? " form-group--error" : ""}`, "aria-describedby": [hintId, errorId].filter(Boolean).join(" ") || null },
    h("legend", { class: legendClass, text: legend }),
    hint ? h("p", { id: hintId, class: "hint", text: hint }) : null,
    errorLine(errorId, message),
    options.map((option, i) => {
      const boxId = i === 0 ? id : `${id}-${i}`;
      const optionHint = option.hint ? `${boxId}-hint` : null;
      return h("div", { class: "choice" },
        h("input", { type, id: boxId, name: id, value: option.value, checked: on.includes(option.value), "aria-describedby": optionHint }),
        h("label", { for: boxId }, option.label, optionHint ? h("span", { id: optionHint, class: "hint choice__hint", text: ` ${option.hint}` }) : null));
    }));
}

/** The values of a form's controls by name: text as typed, radios as one value, checkboxes as a list. */
export function formValues(form) {
  const values = {};
  for (const element of form.elements) {
    if (!element.name) continue;
    if (element.type === "checkbox") {
      values[element.name] ??= [];
      if (element.checked) values[element.name].push(element.value);
    } else if (element.type === "radio") {
      if (element.checked) values[element.name] = element.value;
      else values[element.name] ??= "";
    } else values[element.name] = element.value;
  }
  return values;
}

/** [{field, message}] for required values that are empty: required({field: [value, message]}). */
export function required(checks) {
  return Object.entries(checks)
    .filter(([, [value]]) => (Array.isArray(value) ? value.length === 0 : !String(value ?? "").trim()))
    .map(([field, [, message]]) => ({ field, message }));
}

/** The visible name of a control in `root`: its label, or its fieldset's legend. */
function labelOf(root, id) {
  const control = id ? root.querySelector(`#${CSS.escape(id)}`) : null;
  if (!control) return "";
  const legend = control.closest("fieldset")?.querySelector("legend");
  if (control.type === "radio" || control.type === "checkbox") return legend ? legend.textContent : "";
  return root.querySelector(`label[for="${CSS.escape(id)}"]`)?.textContent || "";
}

function summary(problem, w, root) {
  const links = problem.errors.map((item) => {
    const owner = w.ownerOf(item.field);
    const id = owner ? owner.fields[Object.keys(owner.fields).find((name) => item.field === name || item.field.startsWith(`${name}.`))] : null;
    const label = item.api ? labelOf(root, id) : "";
    const text = label ? `${label}: ${item.message}` : item.message;
    if (!owner || !id) return h("li", { text });
    const here = owner.id === w.step.id;
    return h("li", {}, h("a", {
      href: here ? `#${id}` : w.stepHref(owner.id),
      onclick: here ? (event) => {
        event.preventDefault(); // the hash is the router's: move focus instead
        document.getElementById(id)?.focus();
      } : null,
    }, text));
  });
  return h("div", { class: "error-summary", tabindex: "-1", "aria-labelledby": "error-summary-title", "data-focus": "" },
    h("div", { role: "alert" },
      h("h2", { id: "error-summary-title", class: "error-summary__title", text: t("error.summary_title") }),
      h("p", { text: problem.headline }),
      links.length ? h("ul", { class: "error-summary__list" }, links) : null));
}

/**
 * wizard(spec) -> a router view. spec: {name, path(params), exit(params) (href), caption(ctx), load(params),
 * initial(ctx, params), steps: [{id, title(w), fields: {apiField: controlId}, when?(w), affects?: [ids],
 * build(w), read(values, w), validate?(w) -> errors, check?(w) (async; may throw ApiError), summary?(w) ->
 * rows [label, value]}], review: {title, button(w), intro?(w), extra?(w), validate?(values, w)},
 * submit(w, key), done(w) -> nodes, gate?(w) -> nodes when the wizard cannot run}.
 */
export function wizard(spec) {
  return async ({ params, query, main, isCurrent }) => {
    const path = spec.path(params);
    let state = loadState(spec.name, query.run);
    if (!state || state.path !== path) {
      state = { run: crypto.randomUUID(), key: newKey(), path, data: null, completed: [], checked: {}, problem: null, result: null };
    }
    let ctx = contexts.get(state.run);
    if (!ctx) {
      try {
        ctx = await spec.load(params);
      } catch (error) {
        if (!isCurrent()) return;
        if (!(error instanceof ApiError)) throw error;
        setTitle(spec.title());
        replace(main, h("h1", { text: spec.title() }), problemBanner(error), h("p", {}, h("a", { href: spec.exit(params), text: t("wizard.exit") })));
        return;
      }
      contexts.set(state.run, ctx);
    }
    if (!isCurrent()) return;
    state.data ??= spec.initial(ctx, params);
    saveState(spec.name, state);
    const steps = () => [...spec.steps, { id: "review", fields: spec.reviewFields || {}, review: true }];
    const w = {
      params, ctx, state, data: state.data, query, isCurrent,
      save: () => saveState(spec.name, state),
      stepHref: (id, extra = {}) => href(path, { run: state.run, step: id, ...extra }),
      active: () => steps().filter((step) => !step.when || step.when(w)),
      ownerOf: (field) => w.active().find((step) => Object.keys(step.fields).some((name) => field === name || field.startsWith(`${name}.`))),
      message: (field) => messageFor(state.problem, field),
    };
    if (query.run !== state.run) {
      location.replace(w.stepHref(w.active()[0].id));
      return;
    }
    if (state.result) {
      renderDone(spec, w, main);
      return;
    }
    const gate = spec.gate ? spec.gate(w) : null;
    if (gate) {
      setTitle(spec.title(w));
      replace(main, h("p", { class: "caption-l", text: spec.title(w) }), gate);
      return;
    }
    const active = w.active();
    const step = active.find((candidate) => candidate.id === query.step) || active[0];
    const firstOpen = active.find((candidate) => !candidate.review && !state.completed.includes(candidate.id));
    if (firstOpen && active.indexOf(step) > active.indexOf(firstOpen)) {
      location.replace(w.stepHref(firstOpen.id));
      return;
    }
    w.step = step;
    renderStep(spec, w, main, active);
  };
}

function renderDone(spec, w, main) {
  setTitle(spec.doneTitle(w));
  replace(main, spec.done(w));
}

function backHref(spec, w, active) {
  if (w.query.change && !w.step.review) return w.stepHref("review");
  const index = active.indexOf(w.step);
  return index > 0 ? w.stepHref(active[index - 1].id) : spec.exit(w.params);
}

function renderStep(spec, w, main, active) {
  const { step, state } = w;
  const title = step.review ? spec.review.title(w) : step.title(w);
  setTitle(`${title} · ${spec.title(w)}`);
  // A problem is shown on the step that owns one of its fields; one no step owns (no answer, 401, 404, 5xx)
  // on the step where it happened: the review after the commit, a question's page after its check.
  const owner = state.problem ? state.problem.errors.map((item) => w.ownerOf(item.field)).find(Boolean) : null;
  const problemHere = state.problem && (owner ? owner.id === step.id : (state.problem.at || "review") === step.id);
  const submit = h("button", { type: "submit", class: "button",
    text: step.review ? spec.review.button(w) : t("action.next") });
  const body = step.review ? reviewBody(spec, w, active) : step.build(w);
  // Says a check or the commit is on its way (a slow network): a polite live region, there from the start so
  // screen readers announce its text when it changes, empty when nothing is.
  const progress = h("p", { class: "progress", role: "status", "aria-live": "polite" });
  const form = h("form", { class: "form", novalidate: true, "aria-labelledby": "wizard-heading" }, body,
    h("div", { class: "toolbar" }, submit), progress);
  replace(main,
    h("p", {}, h("a", { href: backHref(spec, w, active), class: "back-link", text: t("action.back") })),
    problemHere ? summary(state.problem, w, form) : null,
    h("p", { class: "caption-l", text: spec.title(w) }),
    h("h1", { id: "wizard-heading", text: title }),
    form);
  if (!step.review) {
    form.addEventListener("input", () => {
      Object.assign(state.data, step.read(formValues(form), w));
      w.save();
    });
  }
  // Whether the page still shows this render of the step: on a slow network the partner may go Back (or
  // anywhere) while a check or the commit is on its way; its answer must then neither move them nor overwrite
  // what they did. The router's per-render ticket, not the address: Back then Forward shows the same address
  // again, drawn anew from the stored run, and the old form's answer must not act on it.
  w.stillHere = w.isCurrent;
  let busy = false;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (busy) return; // a double click sends once
    busy = true;
    submit.disabled = true;
    submit.setAttribute("aria-disabled", "true");
    progress.textContent = t("wizard.in_progress");
    try {
      if (step.review) await commit(spec, w, form);
      else await next(spec, w, form, active);
    } finally {
      busy = false;
      progress.textContent = "";
      submit.disabled = false;
      submit.removeAttribute("aria-disabled");
    }
  });
}

function showProblem(w, problem) {
  if (!session.signedIn()) return; // the session ended (401): the app is on its way to Sign in, and back here
  const owner = problem.errors.map((item) => w.ownerOf(item.field)).find(Boolean);
  const target = owner ? owner.id : w.step.id;
  w.state.problem = { ...problem, at: target };
  w.save();
  if (target === w.step.id) navigate(...hrefParts(w.stepHref(target, w.query.change ? { change: "1" } : {})));
  else navigate(...hrefParts(w.stepHref(target, { change: "1" })));
}

/** The commit's outcome into the run's stored state, as the page the partner moved to left it. */
function keepInStore(spec, state, outcome) {
  saveState(spec.name, { ...(loadState(spec.name, state.run) || state), ...outcome });
}

/** href() back into navigate()'s (path, query). */
function hrefParts(target) {
  const [path, search = ""] = target.replace(/^#/, "").split("?");
  return [path, Object.fromEntries(new URLSearchParams(search))];
}

async function next(spec, w, form, active) {
  const { step, state } = w;
  const values = step.read(formValues(form), w);
  Object.assign(state.data, values);
  const errors = step.validate ? step.validate(w) : [];
  if (errors.length) {
    showProblem(w, localProblem(errors));
    return;
  }
  const signature = JSON.stringify(values);
  if (state.checked[step.id] !== signature) {
    // Changed since last time: the steps that depend on this answer must be answered again.
    state.completed = state.completed.filter((id) => !(step.affects || []).includes(id));
  }
  if (step.check) {
    try {
      await step.check(w);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (w.stillHere()) showProblem(w, toProblem(error));
      return;
    }
    if (!w.stillHere()) return; // moved on meanwhile: Next from this step again checks again
  }
  state.checked[step.id] = signature;
  if (!state.completed.includes(step.id)) state.completed.push(step.id);
  state.problem = null;
  w.save();
  const now = w.active();
  const index = now.findIndex((candidate) => candidate.id === step.id);
  const following = w.query.change
    ? now.find((candidate) => candidate.review || !state.completed.includes(candidate.id))
    : now[index + 1];
  navigate(...hrefParts(w.stepHref(following.id, w.query.change && !following.review ? { change: "1" } : {})));
}

function reviewBody(spec, w, active) {
  const sections = active.filter((step) => step.summary).map((step) => {
    const rows = step.summary(w).filter(Boolean);
    return rows.map(([label, value], i) => h("div", { class: "summary-list__row" },
      h("dt", {}, label), h("dd", {}, value),
      h("dd", { class: "summary-list__actions" }, i === 0 ? h("a", { href: w.stepHref(step.id, { change: "1" }) },
        t("wizard.change"), h("span", { class: "visually-hidden", text: ` ${label}` })) : null)));
  });
  return [
    spec.review.intro ? spec.review.intro(w) : null,
    h("dl", { class: "summary-list summary-list--actions" }, sections),
    spec.review.extra ? spec.review.extra(w) : null,
  ];
}

async function commit(spec, w, form) {
  const { state } = w;
  const errors = spec.review.validate ? spec.review.validate(formValues(form), w) : [];
  if (errors.length) {
    showProblem(w, localProblem(errors));
    return;
  }
  try {
    state.result = await spec.submit(w, state.key);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    // Refused: that attempt is over, the next one is new. No definite answer: the same key makes a retry safe.
    state.key = keyAfter(error, state.key);
    if (!w.stillHere()) {
      keepInStore(spec, state, { key: state.key });
      return;
    }
    if (spec.onProblem) spec.onProblem(error, w);
    showProblem(w, toProblem(error));
    return;
  }
  state.problem = null;
  if (!w.stillHere()) {
    keepInStore(spec, state, { result: state.result, problem: null }); // any step of this run now shows it done
    return;
  }
  w.save();
  navigate(...hrefParts(w.stepHref("done")));
}

/** A summary list of a contact for the review. */
export function contactSummary(contact, withLanguage) {
  return summaryList([
    [t("wizard.contact_name"), contact.name],
    [t("wizard.contact_email"), contact.email],
    [t("wizard.contact_phone"), contact.phone],
    withLanguage ? [t("wizard.contact_language"), t(`language.name.${contact.language}`)] : null,
  ]);
}
