// The page for an address the app does not know.

import { h, replace } from "../dom.js";
import { t } from "../i18n.js";
import { href, setTitle } from "../router.js";

export async function notFoundView({ main }) {
  setTitle(t("not_found.title"));
  replace(main, h("h1", { text: t("not_found.title") }), h("p", { text: t("not_found.body") }),
    h("p", {}, h("a", { href: href("/engagements"), text: t("nav.engagements") })));
}
