// Who is signed in. The token lives in memory; with local sign-in also in sessionStorage (so a reload keeps
// the session, and closing the tab ends it); with OIDC sign-in (oidc.js) in memory only. Never in
// localStorage, never in the URL. Roles are read from the token's payload for display and for hiding what
// a role cannot do; the API still enforces them.

const STORAGE_KEY = "mci.session";
let current = null;
let ended = false; // the last session ended by itself (its token expired or the API refused it), not by Sign out

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
  if (remember) sessionStorage.setItem(STORAGE_KEY, JSON.stringify(current));
  else sessionStorage.removeItem(STORAGE_KEY);
}

export function signOut() {
  current = null;
  ended = false;
  sessionStorage.removeItem(STORAGE_KEY);
}

/** The session ended by itself (token expired, or the API answered 401): signed out, and Sign in says why. */
export function endSession() {
  signOut();
  ended = true;
}

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
