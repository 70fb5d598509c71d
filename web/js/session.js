// Who is signed in. The token lives in memory; with local sign-in also in sessionStorage (so a reload keeps
// the session, and closing the tab ends it); with OIDC sign-in (oidc.js) in memory only. Never in
// localStorage, never in the URL. Roles are read from the token's payload for display and for hiding what
// a role cannot do; the API still enforces them.
//
// Drafts (what a partner typed and has not sent: a wizard's run, a claim's notes or reason) are kept in this
// tab's sessionStorage (never localStorage: shared by tabs and kept for ever) under `mci.draft.`, each with its
// owner (the token's partner and subject). Only the owner reads them back: a session that ends by itself keeps
// them for its owner's next sign-in; anyone else signing in on the tab has them removed; Sign out removes all,
// and the wizard runs older code saved under `mci.wizard.` (never read).

const STORAGE_KEY = "mci.session";
const DRAFTS = "mci.draft.";
const OLD_WIZARD_RUNS = "mci.wizard.";
let current = null;
let ended = false; // the last session ended by itself (its token expired or the API refused it), not by Sign out
let owner = null; // whose drafts this tab shows: the signed-in user's, or the one whose session ended by itself

function decodePayload(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")));
  } catch {
    return {};
  }
}

function load() {
  if (current === null) {
    try {
      const stored = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || "null");
      current = stored && typeof stored.token === "string" ? stored : null;
    } catch {
      current = null;
    }
    if (current) owner = ownerOf(current.token);
  }
  // Checked on every use, not only at load: a page left open outlives its token.
  if (current && decodePayload(current.token).exp * 1000 < Date.now()) endSession();
  return current;
}

/** signIn(token): in memory and sessionStorage; signIn(token, {remember: false}): in memory only. */
export function signIn(token, { remember = true } = {}) {
  const claims = decodePayload(token);
  current = {
    token,
    partnerId: String(claims.partner_id || ""),
    user: String(claims.sub || ""),
    roles: Array.isArray(claims.roles) ? claims.roles.map(String) : [],
  };
  ended = false;
  owner = ownerOf(token);
  forgetDrafts((entry) => entry.owner !== owner); // someone else's (their session ended on this tab)
  if (remember) sessionStorage.setItem(STORAGE_KEY, JSON.stringify(current));
  else sessionStorage.removeItem(STORAGE_KEY);
}

function forget() {
  current = null;
  sessionStorage.removeItem(STORAGE_KEY);
}

/** Sign out: the session and every draft of the tab, with the wizard runs older code saved. */
export function signOut() {
  forget();
  ended = false;
  owner = null;
  forgetDrafts(() => true);
  for (const key of storageKeys()) if (key.startsWith(OLD_WIZARD_RUNS)) sessionStorage.removeItem(key);
}

/**
 * The session ended by itself (token expired, or the API answered 401): signed out, and Sign in says why. The
 * drafts stay for their owner, who signs in again and comes back to them.
 */
export function endSession() {
  forget();
  ended = true;
}

/** Who owns what this token's user types: partner and subject (the token's own claims, not stored copies). */
function ownerOf(token) {
  const claims = decodePayload(token);
  return JSON.stringify([String(claims.partner_id || ""), String(claims.sub || "")]);
}

function readDraft(storageKey) {
  try {
    const entry = JSON.parse(sessionStorage.getItem(storageKey) || "null");
    return entry && typeof entry === "object" ? entry : null;
  } catch {
    return null;
  }
}

function storageKeys() {
  return Array.from({ length: sessionStorage.length }, (_, i) => sessionStorage.key(i) || "");
}

function forgetDrafts(which) {
  for (const key of storageKeys()) {
    if (key.startsWith(DRAFTS) && which(readDraft(key) || {})) sessionStorage.removeItem(key);
  }
}

/**
 * The user's drafts in this tab: drafts.get(key) -> the value the same user saved, else null (another user's
 * is removed); drafts.set(key, value); drafts.remove(key). Keys are the caller's (`wizard.add.<run>`).
 */
export const drafts = {
  get(key) {
    const entry = readDraft(DRAFTS + key);
    if (!entry) return null;
    if (owner !== null && entry.owner === owner) return entry.value ?? null;
    if (owner !== null) sessionStorage.removeItem(DRAFTS + key);
    return null;
  },
  set(key, value) {
    if (owner !== null) sessionStorage.setItem(DRAFTS + key, JSON.stringify({ owner, value }));
  },
  remove(key) {
    sessionStorage.removeItem(DRAFTS + key);
  },
};

// Role names as the API has them (SPEC §3 rule 1 and the referral rules).
const CLAIM_ROLES = ["incentives_user", "incentives_admin"];
const ABILITIES = {
  claims: CLAIM_ROLES, // Customers page, claim details, add, claim, consent, submit, cancel
  referrals: ["referral_admin"], // read a referral
};

export const session = {
  token: () => (load() ? load().token : null),
  partnerId: () => (load() ? load().partnerId : ""),
  roles: () => (load() ? load().roles : []),
  signedIn: () => load() !== null,
  /** Whether the last session ended by itself (Sign in then says so). */
  ended: () => ended,
  /** can("claims") / can("referrals"): whether to offer it. */
  can: (ability) => (load() ? load().roles.some((role) => (ABILITIES[ability] || []).includes(role)) : false),
};
