// Strings and formats. One catalogue per language (web/i18n/<lang>.json, the same keys in each);
// t("key", {name: value}) fills {name} placeholders. Dates, money and days left use Intl for the language.
// The chosen language is remembered in localStorage (the only thing the app keeps there).

export const LANGUAGES = ["en", "es"];
const STORAGE_KEY = "mci.language";
let language = "en";
let catalogue = {};

export function currentLanguage() {
  return language;
}

/** The remembered language, else the browser's if supported, else English. */
export function preferredLanguage() {
  const remembered = localStorage.getItem(STORAGE_KEY);
  if (LANGUAGES.includes(remembered)) return remembered;
  const browser = (navigator.language || "en").slice(0, 2);
  return LANGUAGES.includes(browser) ? browser : "en";
}

export async function setLanguage(next) {
  const chosen = LANGUAGES.includes(next) ? next : "en";
  const response = await fetch(new URL(`../i18n/${chosen}.json`, import.meta.url), { cache: "no-cache" });
  if (!response.ok) throw new Error(`catalogue ${chosen}: ${response.status}`);
  catalogue = await response.json();
  language = chosen;
  localStorage.setItem(STORAGE_KEY, chosen);
  document.documentElement.lang = chosen;
}

/** The string for `key` with {placeholders} filled; the key itself when missing (visible in tests). */
export function t(key, values = {}) {
  const text = Object.hasOwn(catalogue, key) ? catalogue[key] : key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (Object.hasOwn(values, name) ? String(values[name]) : whole));
}

/** `key.one` / `key.other` by the language's plural rules, with {count}. */
export function plural(key, count) {
  const form = new Intl.PluralRules(language).select(count) === "one" ? "one" : "other";
  return t(`${key}.${form}`, { count: formatNumber(count) });
}

/** t(key) when the catalogue has it, else `fallback` (API text such as a reason's own sentence). */
export function tOr(key, fallback) {
  return Object.hasOwn(catalogue, key) ? t(key) : fallback;
}

export function formatNumber(value) {
  return new Intl.NumberFormat(language).format(value);
}

export function formatUsd(value) {
  if (value === null || value === undefined) return "";
  return new Intl.NumberFormat(language, { style: "currency", currency: "USD" }).format(value);
}

export function formatDate(iso) {
  if (!iso) return "";
  return new Intl.DateTimeFormat(language, { dateStyle: "medium", timeZone: "UTC" }).format(new Date(iso));
}

export function formatDateTime(iso) {
  if (!iso) return "";
  const options = { dateStyle: "medium", timeStyle: "short", timeZone: "UTC" };
  return `${new Intl.DateTimeFormat(language, options).format(new Date(iso))} UTC`;
}

/** "12 Jan 2027 (29 days left)". */
export function formatDeadline(iso, daysLeft) {
  if (!iso) return "";
  const left = daysLeft === null || daysLeft === undefined ? "" : ` (${plural("days_left", daysLeft)})`;
  return `${formatDate(iso)}${left}`;
}
