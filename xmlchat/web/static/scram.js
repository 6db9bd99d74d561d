// SCRAM (RFC 5802, RFC 7677) in the browser with WebCrypto: the password never
// leaves the page, only a proof that we know it. WebCrypto exists only in a
// secure context (https, or http on localhost), which is where this page may
// log in anyway.

const HASHES = { "SCRAM-SHA-256": ["SHA-256", 256], "SCRAM-SHA-1": ["SHA-1", 160] };
export const SCRAM_MECHANISMS = Object.keys(HASHES); // best first

const utf8 = new TextEncoder();

export function toBase64(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes)));
}

function fromBase64(text) {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

// "a=1,b=2" -> {a: "1", b: "2"} (values may contain "=", e.g. base64).
function parseAttributes(text) {
  const attributes = {};
  for (const part of text.split(",")) attributes[part[0]] = part.slice(2);
  return attributes;
}

// RFC 5802 §5.1: ',' and '=' in a user name are escaped.
function saslName(name) {
  return name.replaceAll("=", "=3D").replaceAll(",", "=2C");
}

async function hmac(hash, key, text) {
  const k = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, utf8.encode(text)));
}

async function saltedPassword(hash, bits, password, salt, iterations) {
  // NFKC stands in for SASLprep (RFC 4013): the same for ordinary passwords.
  const key = await crypto.subtle.importKey("raw", utf8.encode(password.normalize("NFKC")), "PBKDF2", false, ["deriveBits"]);
  const params = { name: "PBKDF2", hash, salt, iterations };
  return new Uint8Array(await crypto.subtle.deriveBits(params, key, bits));
}

// One SCRAM exchange. `send(name, base64)` writes <auth>/<response>;
// `receive()` gives the server's next SASL element.
export async function scram(mechanism, username, password, send, receive) {
  const [hash, bits] = HASHES[mechanism];
  const gs2Header = "n,,"; // no channel binding: a browser cannot see the TLS layer
  const clientNonce = toBase64(crypto.getRandomValues(new Uint8Array(18)));
  const clientFirstBare = `n=${saslName(username)},r=${clientNonce}`;
  send("auth", toBase64(utf8.encode(gs2Header + clientFirstBare)));

  const challenge = await receive();
  if (challenge.localName !== "challenge") return challenge; // a <failure/>
  const serverFirst = new TextDecoder().decode(fromBase64(challenge.textContent));
  const { r: nonce, s: salt, i: iterations } = parseAttributes(serverFirst);
  if (!nonce.startsWith(clientNonce)) throw new Error("the server changed our nonce");

  const salted = await saltedPassword(hash, bits, password, fromBase64(salt), Number(iterations));
  const clientKey = await hmac(hash, salted, "Client Key");
  const storedKey = new Uint8Array(await crypto.subtle.digest(hash, clientKey));
  const withoutProof = `c=${btoa(gs2Header)},r=${nonce}`;
  const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
  const signature = await hmac(hash, storedKey, authMessage);
  const proof = clientKey.map((byte, i) => byte ^ signature[i]);
  send("response", toBase64(utf8.encode(`${withoutProof},p=${toBase64(proof)}`)));

  const outcome = await receive();
  if (outcome.localName === "success") {
    // The server proves it knew our keys too (RFC 5802 §3, ServerSignature).
    const serverKey = await hmac(hash, salted, "Server Key");
    const expected = toBase64(await hmac(hash, serverKey, authMessage));
    const final = parseAttributes(new TextDecoder().decode(fromBase64(outcome.textContent)));
    if (final.v !== expected) throw new Error("the server could not prove it knows the password");
  }
  return outcome;
}
