// The test harness: one `rampart serve` per test file (durable default: a --data-dir in a fresh temp
// dir), on a free loopback port, with fixed root credentials; SDK clients pointed at it.
//
// The JavaScript counterpart of tests/compat/conftest.py + support.py (RampartServer, make_client).
// Every file starts its own server, so `node --test` may run the files concurrently.

import { spawn } from "node:child_process";
import { randomInt, randomUUID } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync, accessSync, constants } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { fileURLToPath } from "node:url";

// Clients built in this process must not pick up the developer's ~/.aws or AWS_* variables (an
// AWS_ENDPOINT_URL_*, a profile's region or retry settings): every client gets its config below.
for (const k of Object.keys(process.env)) {
  if (k.startsWith("AWS_") && k !== "AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED") delete process.env[k];
}
Object.assign(process.env, {
  AWS_CONFIG_FILE: "/dev/null",
  AWS_SHARED_CREDENTIALS_FILE: "/dev/null",
  AWS_EC2_METADATA_DISABLED: "true",
});

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const REGION = "us-east-1";
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 20_000;

export function rampartBin() {
  const bin = process.env.RAMPART_BIN || join(REPO, "target", "debug", "rampart");
  try {
    accessSync(bin, constants.X_OK);
  } catch {
    throw new Error(
      `rampart binary not found at ${bin}: build it first (cargo build --bin rampart) or point RAMPART_BIN at it`,
    );
  }
  return bin;
}

function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

const KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const pick = (alphabet, n) => Array.from({ length: n }, () => alphabet[randomInt(alphabet.length)]).join("");

export const randomAccountId = () => String(100_000_000_000 + randomInt(900_000_000_000 - 1));
export const randomKeyId = (prefix = "AKIA") => prefix + pick(KEY_ALPHABET, 16);
export const randomSecret = () => pick(SECRET_ALPHABET, 40);

let counter = 0;
/** A name no other test uses: valid for users, roles, policies, secrets, aliases, trails. */
export function unique(prefix = "t") {
  counter += 1;
  return `${prefix}-${counter}-${randomUUID().slice(0, 8)}`;
}

/** The environment of the server: nothing from the caller's AWS_* / RAMPART_* setup leaks in. */
function serverEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith("AWS_") && !k.startsWith("RAMPART_")) env[k] = v;
  }
  return { ...env, AWS_CONFIG_FILE: "/dev/null", AWS_SHARED_CREDENTIALS_FILE: "/dev/null", ...extra };
}

export class RampartServer {
  /** `extraEnv`: more environment for `rampart serve` (e.g. RAMPART_KMS_XKS_ALLOW_HTTP). */
  constructor(extraEnv = {}) {
    this.extraEnv = extraEnv;
    this.bin = rampartBin();
    this.workdir = mkdtempSync(join(tmpdir(), "rampart-sdk-js-"));
    this.dataDir = join(this.workdir, "data");
    this.accountId = randomAccountId();
    this.credentials = { accessKeyId: randomKeyId(), secretAccessKey: randomSecret() };
    this.proc = null;
    this.exit = null;
  }

  get endpoint() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start() {
    this.port = await freePort();
    const out = openSync(join(this.workdir, "server.stdout"), "w");
    const err = openSync(join(this.workdir, "server.stderr"), "w");
    this.proc = spawn(
      this.bin,
      ["serve", "--listen", `127.0.0.1:${this.port}`, "--data-dir", this.dataDir],
      {
        cwd: this.workdir,
        stdio: ["ignore", out, err],
        env: serverEnv({
          RAMPART_ACCOUNT_ID: this.accountId,
          RAMPART_ROOT_ACCESS_KEY_ID: this.credentials.accessKeyId,
          RAMPART_ROOT_SECRET_ACCESS_KEY: this.credentials.secretAccessKey,
          ...this.extraEnv,
        }),
      },
    );
    closeSync(out);
    closeSync(err);
    this.exited = once(this.proc, "exit").then(([code, signal]) => {
      this.exit = { code, signal };
      return this.exit;
    });
    await this.waitHealthy();
    return this;
  }

  /** Poll GET /_rampart/health until it answers 200 (a condition wait, not a fixed sleep). */
  async waitHealthy() {
    const deadline = Date.now() + START_TIMEOUT_MS;
    let last;
    while (Date.now() < deadline) {
      if (this.exit) {
        throw new Error(`rampart serve exited (${JSON.stringify(this.exit)}) before becoming healthy\n${this.logs()}`);
      }
      try {
        const res = await fetch(`${this.endpoint}/_rampart/health`, { signal: AbortSignal.timeout(1000) });
        const body = await res.text();
        if (res.status === 200) return JSON.parse(body);
        last = `health answered ${res.status}: ${body.slice(0, 200)}`;
      } catch (e) {
        last = e.cause?.code ?? e.message;
      }
      await delay(20); // poll interval
    }
    this.proc.kill("SIGKILL");
    throw new Error(`rampart serve not healthy after ${START_TIMEOUT_MS} ms (${last})\n${this.logs()}`);
  }

  /** SIGTERM, wait for the exit, fail when it was not clean; then remove the temp dir (unless `keep`). */
  async stop({ keep = false } = {}) {
    if (!this.proc) return;
    if (!this.exit) this.proc.kill("SIGTERM");
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), STOP_TIMEOUT_MS);
    const { code, signal } = await this.exited;
    clearTimeout(timer);
    this.proc = null;
    if (code !== 0) {
      throw new Error(`rampart serve exited with ${code ?? signal} after SIGTERM\n${this.logs()}`);
    }
    if (!keep) rmSync(this.workdir, { recursive: true, force: true });
  }

  /** Stop cleanly and start again on the same data directory (a new port: make new clients). */
  async restart() {
    await this.stop({ keep: true });
    this.exit = null;
    return this.start();
  }

  logs() {
    const read = (f) => {
      try {
        return readFileSync(join(this.workdir, f), "utf8").slice(-4000);
      } catch {
        return "";
      }
    };
    return `--- stdout ---\n${read("server.stdout")}\n--- stderr ---\n${read("server.stderr")}`;
  }

  /** An SDK client (`new ClientClass(config)`) for this server, signed as root unless `credentials` given. */
  client(ClientClass, credentials = this.credentials) {
    return new ClientClass({
      endpoint: this.endpoint,
      region: REGION,
      credentials,
      maxAttempts: 1, // never retry: a retry would hide the first answer, which is what we assert on
    });
  }
}

/** Start a server for the calling test file; returns it (call `stop()` in `after`). */
export async function startServer(extraEnv = {}) {
  return new RampartServer(extraEnv).start();
}

// -- policy documents ---------------------------------------------------------------------------------
export const policy = (...statements) => JSON.stringify({ Version: "2012-10-17", Statement: statements });
export const allow = (action, resource = "*") => ({ Effect: "Allow", Action: action, Resource: resource });
export const ADMIN_ARN = "arn:aws:iam::aws:policy/AdministratorAccess";

/** AWS's implicit-deny message for an identity without a policy allowing `action`. */
export const implicitDeny = (principalArn, action, resource) =>
  `User: ${principalArn} is not authorized to perform: ${action} on resource: ${resource} ` +
  `because no identity-based policy allows the ${action} action`;

/** Non-ASCII text that must come back exactly: Latin-1, CJK, a symbol outside Latin-1, an astral emoji. */
export const UNICODE = "naïve 日本語 ✓ 🔐";

/** Bytes 0..255 and back: every byte value, not valid UTF-8. */
export const ALL_BYTES = Uint8Array.from({ length: 256 }, (_, i) => i);
