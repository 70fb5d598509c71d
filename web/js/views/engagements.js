// The engagements open to the partner (GET /engagements), each linking to its Customers page, and the
// "Attention required" list across them (GET /attention-items), soonest deadline first.

import { get } from "../api.js";
import { h, replace, table } from "../dom.js";
import { formatDate, formatDeadline, plural, t } from "../i18n.js";
import { href, setTitle } from "../router.js";
import { problemBanner } from "../components/problems.js";
import { session } from "../session.js";

const ATTENTION_PAGE = 100;

export function customersHref(engagementId, tab = "eligible") {
  return href(`/engagements/${encodeURIComponent(engagementId)}/customers`, { tab });
}

/** The claims waiting for the partner; only for roles that act on claims (the API refuses the others). */
async function attentionSection() {
  if (!session.can("claims")) return [];
  const title = t("attention.title");
  const heading = h("h2", { id: "attention-title", text: title });
  let page;
  try {
    page = await get(`/attention-items?limit=${ATTENTION_PAGE}`);
  } catch (error) {
    return [heading, problemBanner(error)];
  }
  if (!page.items.length) return [heading, h("p", { text: t("attention.none") })];
  const list = table({
    caption: title,
    captionHidden: true,
    columns: ["attention.claim", "attention.engagement", "attention.reason", "attention.deadline"].map((key) => t(key)),
    rows: page.items.map((item) => [
      h("a", { href: href(`/claims/${encodeURIComponent(item.claim_id)}`) }, item.friendly_name),
      item.engagement_name,
      t(`attention.reason.${item.reason}`),
      formatDeadline(item.deadline, item.days_left),
    ]),
  });
  const more = page.next_cursor ? [h("p", { text: t("attention.more", { count: ATTENTION_PAGE }) })] : [];
  return [heading, list, ...more];
}

export async function engagementsView({ main, isCurrent }) {
  const title = t("engagements.title");
  setTitle(title);
  let items;
  let attention;
  try {
    [items, attention] = await Promise.all([get("/engagements").then((page) => page.items), attentionSection()]);
  } catch (error) {
    if (isCurrent()) replace(main, h("h1", { text: title }), problemBanner(error));
    return;
  }
  if (!isCurrent()) return;
  const list = items.length
    ? table({
      caption: title,
      captionHidden: true,
      columns: ["engagements.name", "engagements.payment_type", "engagements.consent_window",
        "engagements.submission_window", "engagements.status"].map((key) => t(key)),
      rows: items.map((engagement) => [
        h("a", { href: customersHref(engagement.engagement_id) }, engagement.name),
        t(`payment_type.${engagement.payment_type}`),
        plural("window.days", engagement.consent_window_days),
        plural("window.days", engagement.submission_window_days),
        t("engagements.open_until", { date: formatDate(engagement.closes_on) }),
      ]),
    })
    : h("p", { text: t("engagements.none") });
  replace(main, h("h1", { text: title }), h("p", { class: "lead", text: t("engagements.intro") }), list, ...attention);
}
