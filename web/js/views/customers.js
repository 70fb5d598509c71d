// An engagement's Customers page (GET /engagements/{id}/customers): tabs Eligible / Ineligible /
// Complete, each paged through next_cursor ("Load more"), the row actions the API offers as links,
// ineligibility reasons as sentences, the API's note, and Export (the whole tab as CSV).

import { get } from "../api.js";
import { h, replace, table } from "../dom.js";
import { currentLanguage, formatDeadline, t } from "../i18n.js";
import { href, setTitle } from "../router.js";
import { toCsv, download } from "../components/csv.js";
import { buttonLink } from "../components/fields.js";
import { problemBanner } from "../components/problems.js";
import { tabs } from "../components/tabs.js";
import { session } from "../session.js";

export const TABS = ["eligible", "ineligible", "complete"];
const PAGE_SIZE = 10; // a screenful on a phone; "Load more" adds the next ten
const EXPORT_PAGE_SIZE = 100;

function page(engagementId, tab, cursor, limit = PAGE_SIZE) {
  const query = new URLSearchParams({ tab, limit: String(limit) });
  if (cursor) query.set("cursor", cursor);
  return get(`/engagements/${encodeURIComponent(engagementId)}/customers?${query}`);
}

/** Where each action of a row leads (the wizards and dialog are their own routes). */
export function actionHref(action, item, engagementId) {
  const claim = item.claim_id ? encodeURIComponent(item.claim_id) : "";
  switch (action) {
    case "send_consent":
    case "resend_consent":
      return href(`/claims/${claim}/consent`);
    case "submit":
      return href(`/claims/${claim}`, { action: "submit" });
    case "cancel":
      return href(`/claims/${claim}`, { action: "cancel" });
    case "claim_customer":
      return href(`/engagements/${encodeURIComponent(engagementId)}/claim/${encodeURIComponent(item.customer_id || "")}`);
    default:
      return null;
  }
}

/** A reason as a sentence: the API's own (English) sentence, or the catalogue's for its code. */
export function reasonSentence(reason) {
  return currentLanguage() === "en" && reason.message ? reason.message : t(`reason.${reason.code}`);
}

function identifier(item) {
  return item.customer ? `${t(`identifier.${item.customer.type}`)}: ${item.customer.value}` : "";
}

function nameCell(item, tab) {
  if (item.kind !== "claim" || !item.claim_id) return item.friendly_name;
  const link = h("a", { href: href(`/claims/${encodeURIComponent(item.claim_id)}`) }, item.friendly_name);
  if (tab !== "complete") return link;
  return [link, h("br"), h("span", { class: "secondary" }, t("customers.claim_id"), " ", h("a", { href: href(`/claims/${encodeURIComponent(item.claim_id)}`) }, item.claim_id))];
}

function actionsCell(item, engagementId) {
  const offered = session.can("claims") ? item.actions || [] : [];
  const links = offered
    .map((action) => [action, actionHref(action, item, engagementId)])
    .filter(([, target]) => target)
    .map(([action, target]) => h("li", {}, h("a", { href: target },
      t(`action.${action}`), h("span", { class: "visually-hidden", text: item.friendly_name }))));
  return links.length ? h("ul", { class: "actions" }, links) : "";
}

function reasonsCell(item) {
  const reasons = item.reasons || [];
  return reasons.length ? h("ul", { class: "reasons" }, reasons.map((reason) => h("li", { text: reasonSentence(reason) }))) : "";
}

function columns(tab) {
  const base = ["customers.name", "customers.identifier", "customers.state", "customers.deadline"];
  return [...base, tab === "ineligible" ? "customers.reasons" : "customers.actions"].map((key) => t(key));
}

function cells(item, tab, engagementId) {
  return [
    nameCell(item, tab),
    identifier(item),
    item.state ? t(`state.${item.state}`) : t(`kind.${item.kind}`),
    formatDeadline(item.deadline, item.days_left),
    tab === "ineligible" ? reasonsCell(item) : actionsCell(item, engagementId),
  ];
}

async function exportTab(engagementId, tab, button, status) {
  button.disabled = true;
  status.textContent = t("customers.exporting");
  try {
    const items = [];
    let cursor = null;
    do {
      const answer = await page(engagementId, tab, cursor, EXPORT_PAGE_SIZE);
      items.push(...answer.items);
      cursor = answer.next_cursor;
    } while (cursor);
    const header = ["friendly_name", "identifier_type", "identifier_value", "state", "deadline", "days_left",
      "claim_id", "customer_id", "actions", "reasons"];
    const rows = items.map((item) => [item.friendly_name, item.customer?.type, item.customer?.value, item.state,
      item.deadline, item.days_left, item.claim_id, item.customer_id, (item.actions || []).join(" "),
      (item.reasons || []).map((reason) => reason.message || reason.code).join(" | ")]);
    download(`customers-${engagementId}-${tab}.csv`, toCsv(header, rows));
    status.textContent = t("customers.exported", { count: items.length });
  } catch (error) {
    replace(status, problemBanner(error));
  } finally {
    button.disabled = false;
  }
}

/** Fill one tab's panel: first page, then "Load more" appends the next, keeping focus in the table. */
async function fillPanel(panel, engagementId, tab) {
  replace(panel, h("p", { text: t("customers.loading") }));
  const items = [];
  const status = h("p", { class: "status", role: "status" });
  const exportButton = h("button", { type: "button", class: "button button--secondary", text: t("customers.export") });
  exportButton.addEventListener("click", () => exportTab(engagementId, tab, exportButton, status));
  const toolbar = h("div", { class: "toolbar" },
    tab === "eligible" && session.can("claims")
      ? buttonLink(href(`/engagements/${encodeURIComponent(engagementId)}/add`), t("action.add_customer"))
      : null,
    exportButton);
  const body = h("div");
  const more = h("button", { type: "button", class: "button button--secondary", text: t("customers.load_more") });
  const note = h("div");
  let cursor = null;
  let loading = false;
  const load = async () => {
    if (loading) return; // a second press while a page is on its way (slow network, double click) adds nothing
    loading = true;
    more.setAttribute("aria-disabled", "true");
    try {
      const answer = await page(engagementId, tab, cursor);
      const first = items.length;
      items.push(...answer.items);
      cursor = answer.next_cursor;
      replace(note, answer.note ? h("div", { class: "notice", role: "note" }, h("p", { lang: "en", text: answer.note })) : null);
      replace(body, items.length
        ? table({ caption: t(`tab.${tab}`), captionHidden: true, columns: columns(tab), rows: items.map((item) => cells(item, tab, engagementId)) })
        : h("p", { text: t("customers.empty") }));
      more.hidden = !cursor;
      if (first > 0) {
        status.textContent = t("customers.loaded_more", { count: answer.items.length });
        body.querySelectorAll("tbody tr")[first]?.querySelector("a, th")?.focus();
      }
    } catch (error) {
      replace(status, problemBanner(error));
    } finally {
      loading = false;
      more.removeAttribute("aria-disabled");
    }
  };
  more.addEventListener("click", load);
  more.hidden = true;
  await load();
  replace(panel, toolbar, note, body, more, status);
}

export async function customersView({ params, query, main, isCurrent }) {
  const engagementId = params.id;
  const tab = TABS.includes(query.tab) ? query.tab : "eligible";
  let engagement = null;
  try {
    engagement = (await get("/engagements")).items.find((item) => item.engagement_id === engagementId) || null;
  } catch (error) {
    if (isCurrent()) replace(main, h("h1", { text: t("customers.title") }), problemBanner(error));
    return;
  }
  if (!isCurrent()) return;
  const name = engagement ? engagement.name : engagementId;
  setTitle(`${t("customers.title")}: ${name}`);
  const widget = tabs({
    label: t("customers.tabs_label"),
    prefix: "customers",
    items: TABS.map((id) => ({ id, label: t(`tab.${id}`) })),
    selected: tab,
    onSelect: (id, panel) => {
      // The tab is part of the address (bookmarks, reload) without a new render.
      history.replaceState(null, "", href(`/engagements/${encodeURIComponent(engagementId)}/customers`, { tab: id }));
      if (!panel.dataset.loaded) {
        panel.dataset.loaded = "true";
        fillPanel(panel, engagementId, id);
      }
    },
  });
  replace(main,
    h("p", { class: "caption-l", text: t("customers.title") }),
    h("h1", { text: name }),
    engagement ? h("p", { class: "lead", text: t(`payment_type.${engagement.payment_type}`) }) : null,
    h("p", {}, h("a", { href: href("/engagements"), text: t("customers.back_to_engagements") })),
    widget);
}
