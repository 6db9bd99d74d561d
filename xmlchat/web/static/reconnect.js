// When a dropped session comes back by itself, and how soon.
//
//   const reconnector = new Reconnector({
//     attempt: () => logIn(address, password),  // resolves when logged in again
//     onAttempt: (n, delayMs) => showStatus(n), // before each wait
//     onBack: () => hideStatus(),
//     onGiveUp: (message) => showLogin(message),
//   });
//   reconnector.start();   // after a drop that reconnectVerdict() allows
//   reconnector.stop();    // "Log out" meanwhile
//
// No timers or sockets of its own beyond setTimeout: the session is the
// attempt's business (xmpp.js), the page's state is app.js's.

import { AuthError } from "./xmpp.js";

export const FIRST_DELAY_MS = 1000;
export const MAX_DELAY_MS = 30_000;

// The wait before attempt n (1, 2, …): 1 s, 2 s, 4 s … doubling up to 30 s,
// each spread ±25 % so that the pages a server restart dropped together do not
// all come back in the same instant.
export function backoffDelay(attempt, random = Math.random) {
  const base = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** (attempt - 1));
  return Math.min(MAX_DELAY_MS, Math.round(base * (0.75 + random() / 2)));
}

// RFC 6120 §4.9.3: the stream errors that mean "do not come back". Coming back
// would take the resource back from the login that replaced us (conflict,
// §4.9.3.3), use credentials the server no longer accepts (not-authorized,
// §4.9.3.12: `xmlchat passwd` and `deluser` send it), undo what the operator
// did (policy-violation, §4.9.3.14: `xmlchat kick` sends it), or knock at a
// domain the server does not or no longer serves (host-unknown §4.9.3.6,
// host-gone §4.9.3.5). Anything else — system-shutdown, connection-timeout,
// reset, or no stream error at all (a proxy, the network) — is worth a retry.
const FINAL = {
  conflict: "Another login took this session's place.",
  "not-authorized": "The server no longer accepts this login.",
  "policy-violation": "The server ended this session.",
  "host-unknown": "The server does not serve this domain.",
  "host-gone": "The server no longer serves this domain.",
};

// null when the page should reconnect; else the reason to show at the login form.
export function reconnectVerdict({ byUser, streamError }) {
  if (byUser) return "";
  if (!streamError || !(streamError.condition in FINAL)) return null;
  return streamError.text ? `${FINAL[streamError.condition]} (${streamError.text})` : FINAL[streamError.condition];
}

export const PASSWORD_REFUSED = "Your password was not accepted any more (was it changed?): log in again.";

export class Reconnector {
  constructor({ attempt, onAttempt, onBack, onGiveUp, random = Math.random }) {
    Object.assign(this, { attempt, onAttempt, onBack, onGiveUp, random });
    this.count = 0;
    this.timer = null;
    this.running = false;
  }

  start() {
    this.stop();
    this.running = true;
    this.schedule();
  }

  stop() {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = null;
    this.count = 0;
  }

  // The network says it is back (the browser's "online" event): try now
  // rather than at the end of a long wait.
  now() {
    if (!this.running || this.timer === null) return;
    clearTimeout(this.timer);
    this.timer = null;
    this.tryOnce();
  }

  schedule() {
    this.count += 1;
    const delay = backoffDelay(this.count, this.random);
    this.onAttempt(this.count, delay);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.tryOnce();
    }, delay);
  }

  async tryOnce() {
    try {
      await this.attempt();
    } catch (error) {
      if (!this.running) return; // stopped meanwhile ("Log out")
      console.warn(`reconnect attempt ${this.count} failed:`, error?.message ?? error);
      const verdict = error instanceof AuthError ? PASSWORD_REFUSED : reconnectVerdict({ streamError: error.streamError });
      if (verdict) {
        this.stop();
        return this.onGiveUp(verdict);
      }
      return this.schedule();
    }
    if (!this.running) return;
    this.stop();
    this.onBack();
  }
}
