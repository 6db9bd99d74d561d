// One XMPP session over a WebSocket (RFC 7395): each WebSocket message is one
// whole element, so each is parsed on its own with DOMParser.
//
//   const client = new XmppClient("wss://chat.example/xmpp-websocket");
//   await client.login("alice@chat.example", "secret");   // SASL SCRAM, bind
//   client.addEventListener("stanza", (event) => show(event.detail));
//   client.send(xml("message", { to: "bob@chat.example", type: "chat" }, xml("body", {}, "hi")));
//   client.addEventListener("closed", (event) => event.detail); // { byUser, streamError }
//
// A session is used once: after "closed", a new XmppClient logs in again
// (reconnect.js decides whether and when).

import { SCRAM_MECHANISMS, scram } from "./scram.js";

export const NS = {
  client: "jabber:client",
  framing: "urn:ietf:params:xml:ns:xmpp-framing",
  sasl: "urn:ietf:params:xml:ns:xmpp-sasl",
  bind: "urn:ietf:params:xml:ns:xmpp-bind",
  roster: "jabber:iq:roster",
  streams: "http://etherx.jabber.org/streams",
  streamErrors: "urn:ietf:params:xml:ns:xmpp-streams",
};

export class LoginError extends Error {
  constructor(message, streamError = null) {
    super(message);
    this.streamError = streamError; // { condition, text } when the server ended the stream with one
  }
}

// The server refused the credentials (SASL not-authorized, RFC 6120 §6.5.10).
export class AuthError extends LoginError {}

// ---- building stanzas as text: every attribute and text escaped here, once

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" };
const escape = (text) => String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]);

class Markup {
  constructor(text) { this.text = text; }
  toString() { return this.text; }
}

// xml("body", {}, "1 < 2") -> <body>1 &lt; 2</body>; children are strings
// (escaped) or other xml(...) results (kept as they are).
export function xml(name, attributes = {}, ...children) {
  const attrs = Object.entries(attributes)
    .filter(([, value]) => value !== undefined && value !== null)
    .map(([key, value]) => ` ${key}="${escape(value)}"`)
    .join("");
  const inner = children.map((c) => (c instanceof Markup ? c.text : escape(c))).join("");
  return new Markup(inner ? `<${name}${attrs}>${inner}</${name}>` : `<${name}${attrs}/>`);
}

// A top-level stanza: RFC 7395 makes each message a whole document, so each
// one names its namespace itself.
export const stanza = (name, attributes, ...children) => xml(name, { xmlns: NS.client, ...attributes }, ...children);

let counter = 0;
export const newId = () => `web${Date.now().toString(36)}${(counter++).toString(36)}`;

export function bare(jid) {
  return jid.split("/")[0];
}

// ---- the session

export class XmppClient extends EventTarget {
  constructor(url) {
    super();
    this.url = url;
    this.jid = null; // full JID once bound
    this.inbox = []; // elements received before anyone asked (during login)
    this.waiters = []; // login steps waiting for the next element
    this.pendingIq = new Map(); // id -> {resolve, reject}
    this.streamError = null; // { condition, text } of the server's <stream:error/>, if it sent one
    this.closedByUser = false; // close() was called: "Log out", not a drop
  }

  get isOpen() {
    return this.ws?.readyState === WebSocket.OPEN && !this.closedByUser;
  }

  async login(address, password) {
    const [username, domain = location.hostname] = address.split("@");
    await this.connect();
    await this.openStream(domain);
    let features = await this.next();
    const offered = [...features.getElementsByTagNameNS(NS.sasl, "mechanism")].map((m) => m.textContent);
    const mechanism = SCRAM_MECHANISMS.find((m) => offered.includes(m));
    if (!mechanism) throw new LoginError("the server offers no SCRAM mechanism");
    const saslSend = (name, data) => this.send(xml(name, { xmlns: NS.sasl, mechanism: name === "auth" ? mechanism : undefined }, data));
    const outcome = await scram(mechanism, username, password, saslSend, () => this.next());
    if (outcome.localName !== "success") {
      this.close();
      if (outcome.firstElementChild?.localName === "not-authorized") throw new AuthError("Wrong address or password.");
      throw new LoginError("Login failed.");
    }
    await this.openStream(domain); // RFC 6120 §6.4.6: a new stream after SASL
    features = await this.next();
    const bound = await this.iq("set", xml("bind", { xmlns: NS.bind }, xml("resource", {}, `web-${newId()}`)));
    this.jid = bound.getElementsByTagNameNS(NS.bind, "jid")[0].textContent;
    return this.jid;
  }

  connect() {
    return new Promise((resolve, reject) => {
      const refused = () => reject(new LoginError(
        `The server refused the WebSocket at ${this.url}` +
        (location.protocol === "http:" ? " (XMPP over plain HTTP is refused unless a TLS proxy is in front; use https)." : ".")));
      this.ws = new WebSocket(this.url, "xmpp");
      this.ws.onopen = () => resolve();
      this.ws.onerror = refused;
      this.ws.onmessage = (event) => this.received(new DOMParser().parseFromString(event.data, "text/xml").documentElement);
      this.ws.onclose = () => {
        refused(); // closed before it opened (a no-op once resolved)
        this.closed();
      };
    });
  }

  async openStream(domain) {
    this.send(xml("open", { xmlns: NS.framing, to: domain, version: "1.0" }));
    const opened = await this.next();
    if (opened.localName !== "open") throw new LoginError(`Stream refused: ${opened.textContent}`);
  }

  // Every element the server sends arrives here.
  received(element) {
    // RFC 7395 §3.6: a stream error arrives as a <stream:error/> of its own, before <close/>.
    if (element.localName === "error" && element.namespaceURI === NS.streams) {
      this.streamError = streamErrorOf(element);
      return;
    }
    const id = element.getAttribute("id");
    if (element.localName === "iq" && this.pendingIq.has(id) && ["result", "error"].includes(element.getAttribute("type"))) {
      const { resolve, reject } = this.pendingIq.get(id);
      this.pendingIq.delete(id);
      return element.getAttribute("type") === "result" ? resolve(element) : reject(element);
    }
    if (this.jid) return this.dispatchEvent(new CustomEvent("stanza", { detail: element }));
    if (this.waiters.length) return this.waiters.shift().resolve(element);
    this.inbox.push(element);
  }

  // The next element during login (stream features, SASL steps).
  next() {
    if (this.inbox.length) return Promise.resolve(this.inbox.shift());
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  // An <iq/> and its answer: resolves with the result, rejects with the error.
  iq(type, child, to) {
    const id = newId();
    return new Promise((resolve, reject) => {
      if (this.ws?.readyState !== WebSocket.OPEN) return reject(new LoginError("The connection closed."));
      this.pendingIq.set(id, { resolve, reject });
      this.send(stanza("iq", { type, id, to }, child));
    });
  }

  // The way out: one element, one WebSocket message.
  send(stanza) {
    this.ws.send(String(stanza));
  }

  // The user's way out: <close/>, and the server closes the socket (RFC 7395 §3.6).
  // A socket still opening is dropped instead.
  close() {
    this.closedByUser = true;
    if (this.ws?.readyState === WebSocket.OPEN) this.send(xml("close", { xmlns: NS.framing }));
    else this.ws?.close();
  }

  closed() {
    const { streamError } = this;
    const gone = new LoginError(streamError?.text || "The connection closed.", streamError);
    for (const waiter of this.waiters.splice(0)) waiter.reject(gone);
    for (const pending of this.pendingIq.values()) pending.reject(gone);
    this.pendingIq.clear();
    this.dispatchEvent(new CustomEvent("closed", { detail: { byUser: this.closedByUser, streamError } }));
  }
}

// { condition, text } of a <stream:error/> (RFC 6120 §4.9.2): the condition is
// the child in the xmpp-streams namespace other than <text/>.
function streamErrorOf(element) {
  const children = [...element.children].filter((child) => child.namespaceURI === NS.streamErrors);
  const condition = children.find((child) => child.localName !== "text")?.localName ?? "undefined-condition";
  const text = children.find((child) => child.localName === "text")?.textContent ?? "";
  return { condition, text };
}
