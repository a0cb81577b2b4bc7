// A minimal Fedify inbox for the `ap_inbox` bench (benches/benches/ap_inbox.rs): the reference a
// gateway inbox is compared with.
//
// Usage: node bench-inbox.mjs [--port PORT] [--user bench]     (port 0 or absent: any free port)
//
// One local actor (`/users/<user>`, with its own RSA key) whose inbox (`/users/<user>/inbox`) and the
// shared inbox (`/inbox`) are Fedify's own inbox listeners, configured as a normal Fedify app does:
// Fedify parses the activity, verifies the HTTP signature (fetching the signer's key through its
// document loader and caching it in the key-value store), checks that the key's owner is the activity's
// actor and de-duplicates activity ids before the `Create` listener runs. The listener only counts.
// Private addresses are allowed (everything runs on 127.0.0.1).
//
// stdout: one JSON line when listening:
//   {"event":"ready","port":P,"origin":"http://127.0.0.1:P","actor":...,"inbox":...,"sharedInbox":...}
// Control (not under Fedify):
//   GET /_bench/count   {"created": <Create activities accepted by the listener>,
//                        "errors": <inbox errors>, "responses": {"<status>": count, ...}}

import http from "node:http";
import { createFederation, generateCryptoKeyPair, MemoryKvStore } from "@fedify/fedify";
import { Create, Endpoints, Person } from "@fedify/vocab";

const args = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
};
const port = Number(arg("port", "0"));
const user = arg("user", "bench");
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error("usage: node bench-inbox.mjs [--port PORT] [--user NAME]");
  process.exit(2);
}

// Bodies above this are refused before Fedify sees them (Fedify itself has no cap).
const MAX_BODY = 1024 * 1024;

let created = 0;
let errors = 0;
const responses = new Map(); // status -> count

function countResponse(status) {
  responses.set(status, (responses.get(status) ?? 0) + 1);
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

let federation = null;
let origin = null;

const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url ?? "/", origin);
    if (url.pathname === "/_bench/count" && req.method === "GET") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ created, errors, responses: Object.fromEntries(responses) }));
      return;
    }
    let body;
    if (req.method !== "GET" && req.method !== "HEAD") {
      body = await readBody(req);
      if (body == null) {
        countResponse(413);
        res.writeHead(413).end();
        return;
      }
    }
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers)) {
      if (Array.isArray(v)) v.forEach((x) => headers.append(k, x));
      else if (v != null) headers.set(k, v);
    }
    const request = new Request(url, { method: req.method, headers, body });
    const response = await federation.fetch(request, { contextData: undefined });
    countResponse(response.status);
    const out = Buffer.from(await response.arrayBuffer());
    res.writeHead(response.status, Object.fromEntries(response.headers.entries()));
    res.end(out);
  } catch (e) {
    errors++;
    countResponse(500);
    console.error(String(e?.stack ?? e));
    if (!res.headersSent) res.writeHead(500);
    res.end();
  }
});

// Listen first: the origin Fedify builds URLs with carries the port.
await new Promise((resolve, reject) => {
  server.once("error", reject);
  server.listen(port, "127.0.0.1", resolve);
});
const actualPort = server.address().port;
origin = `http://127.0.0.1:${actualPort}`;

const keyPairs = [await generateCryptoKeyPair("RSASSA-PKCS1-v1_5")];

federation = createFederation({
  kv: new MemoryKvStore(),
  allowPrivateAddress: true,
  origin,
});

federation
  .setActorDispatcher("/users/{identifier}", async (ctx, identifier) => {
    if (identifier !== user) return null;
    const keys = await ctx.getActorKeyPairs(identifier);
    return new Person({
      id: ctx.getActorUri(identifier),
      preferredUsername: identifier,
      name: "Fedify bench inbox",
      inbox: ctx.getInboxUri(identifier),
      endpoints: new Endpoints({ sharedInbox: ctx.getInboxUri() }),
      publicKey: keys[0].cryptographicKey,
      assertionMethods: keys.map((k) => k.multikey),
    });
  })
  .setKeyPairsDispatcher(async (_ctx, identifier) => (identifier === user ? keyPairs : []));

federation
  .setInboxListeners("/users/{identifier}/inbox", "/inbox")
  .on(Create, async (_ctx, _create) => {
    created++;
  })
  .onError(async (_ctx, error) => {
    errors++;
    console.error(String(error?.stack ?? error));
  });

const actor = `${origin}/users/${user}`;
process.stdout.write(
  JSON.stringify({
    event: "ready",
    port: actualPort,
    origin,
    actor,
    inbox: `${actor}/inbox`,
    sharedInbox: `${origin}/inbox`,
  }) + "\n",
);
