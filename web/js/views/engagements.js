// The engagements open to the partner (GET /engagements), each linking to its Customers page.

import { get } from "../api.js";
import { h, replace, table } from "../dom.js";
import { formatDate, plural, t } from "../i18n.js";
import { href, setTitle } from "../router.js";
import { problemBanner } from "../components/problems.js";

export function customersHref(engagementId, tab = "eligible") {
  return href(`/engagements/${encodeURIComponent(engagementId)}/customers`, { tab });
}

export async function engagementsView({ main, isCurrent }) {
  const title = t("engagements.title");
  setTitle(title);
  let items;
  try {
    items = (await get("/engagements")).items;
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
  replace(main, h("h1", { text: title }), h("p", { class: "lead", text: t("engagements.intro") }), list);
}
