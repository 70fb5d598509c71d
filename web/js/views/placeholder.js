// Routes whose views come in a later slice (the Add customer and Claim customer wizards, the consent
// dialog), and the page for an unknown address.

import { h, replace } from "../dom.js";
import { t } from "../i18n.js";
import { href, setTitle } from "../router.js";

export function placeholderView(titleKey) {
  return async ({ main }) => {
    setTitle(t(titleKey));
    replace(main, h("h1", { text: t(titleKey) }), h("p", { text: t("placeholder.coming") }),
      h("p", {}, h("a", { href: href("/engagements"), text: t("nav.engagements") })));
  };
}

export async function notFoundView({ main }) {
  setTitle(t("not_found.title"));
  replace(main, h("h1", { text: t("not_found.title") }), h("p", { text: t("not_found.body") }),
    h("p", {}, h("a", { href: href("/engagements"), text: t("nav.engagements") })));
}
