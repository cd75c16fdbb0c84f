import { describe, expect, test } from "bun:test";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultConfig, fromIni, fromYaml, loadConfigFile, loadOrCreateHostkey } from "../src/config.ts";
import { ConfigError } from "../src/errors.ts";

const dir = mkdtempSync(join(tmpdir(), "gossip-config-"));
const file = join(dir, "node.yaml");

function configError(text: string): ConfigError {
  try {
    fromYaml(file, text);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

describe("YAML config", () => {
  test("full example parses, paths resolve against the file's folder", () => {
    const c = fromYaml(
      file,
      `hostkey: ./hostkey.pem
gossip:
  api_address: 127.0.0.1:7001
  p2p_address: "[::1]:6001"
  bootstrapper: [peer.example:6001, "10.0.0.2:6002"]
  degree: 8
  cache_size: 20
  pow_difficulty: 4
rps:
  api_address: localhost:7101
`,
    );
    expect(c.hostkeyPath).toBe(join(dir, "hostkey.pem"));
    expect(c.apiAddress).toEqual({ host: "127.0.0.1", port: 7001 });
    expect(c.p2pAddress).toEqual({ host: "::1", port: 6001 });
    expect(c.bootstrappers).toEqual([
      { host: "peer.example", port: 6001 },
      { host: "10.0.0.2", port: 6002 },
    ]);
    expect([c.degree, c.cacheSize, c.powDifficulty]).toEqual([8, 20, 4]);
    expect(c.rpsApiAddress).toEqual({ host: "localhost", port: 7101 });
  });

  test("defaults for everything but the hostkey; a single bootstrapper string", () => {
    const c = fromYaml(file, "hostkey: k.pem\ngossip:\n  bootstrapper: a:1\n");
    expect(c.degree).toBe(30);
    expect(c.cacheSize).toBe(50);
    expect(c.apiAddress.port).toBe(7001);
    expect(c.bootstrappers).toEqual([{ host: "a", port: 1 }]);
    expect(c.rpsApiAddress).toBeUndefined();
  });

  test.each([
    ["hostkey: k\nbogus: 1\n", "bogus", "unknown key"],
    ["hostkey: k\ngossip:\n  degre: 3\n", "gossip.degre", "unknown key"],
    ["hostkey: k\ngossip:\n  degree: many\n", "gossip.degree", "expected an integer"],
    ["hostkey: k\ngossip:\n  degree: 0\n", "gossip.degree", "out of range"],
    ["hostkey: k\ngossip:\n  cache_size: 2.5\n", "gossip.cache_size", "expected an integer"],
    ["hostkey: k\ngossip:\n  api_address: 127.0.0.1:70000\n", "gossip.api_address", "out of range"],
    ["hostkey: k\ngossip:\n  p2p_address: nocolon\n", "gossip.p2p_address", "not host:port"],
    ["hostkey: k\ngossip:\n  bootstrapper: [a:1, b:x]\n", "gossip.bootstrapper[1]", "not a number"],
    ["hostkey: k\ngossip:\n  pow_difficulty: 40\n", "gossip.pow_difficulty", "out of range"],
    ["hostkey: k\ngossip:\n  log_level: loud\n", "gossip.log_level", "expected one of"],
    ["hostkey: k\ngossip:\n  dissemination: gossipsub\n", "gossip.dissemination", "expected plumtree or flood"],
    ["hostkey: k\ngossip:\n  overlay: mesh\n", "gossip.overlay", "expected hyparview or classic"],
    ["hostkey: k\nrps:\n  address: a:1\n", "rps.address", "unknown key"],
    ["gossip:\n  degree: 3\n", "hostkey", "missing"],
    ["hostkey: [1]\n", "hostkey", "expected a file path"],
    ["hostkey: k\ngossip: [1, 2]\n", "gossip", "expected a mapping"],
    ["hostkey: k\ngossip:\n  degree: [\n", "(syntax)", ""],
  ])("%p names %p", (text, key, problem) => {
    const e = configError(text);
    expect(e.key).toBe(key);
    expect(e.problem).toContain(problem);
    expect(e.message).toStartWith(`${file}: ${key}: `);
  });
});

test("gossip.dissemination: plumtree by default, flood when asked (YAML and INI)", () => {
  expect(fromYaml(file, "hostkey: k\n").dissemination).toBe("plumtree");
  expect(fromYaml(file, "hostkey: k\ngossip:\n  dissemination: flood\n").dissemination).toBe("flood");
  expect(fromIni(join(dir, "d.ini"), "hostkey = k\n[gossip]\ndissemination = flood\n").dissemination).toBe("flood");
});

describe("VoidPhone INI config", () => {
  test("global hostkey before sections, [gossip] and [rps]; other sections ignored; inline comments", () => {
    const c = fromIni(
      join(dir, "v.ini"),
      `hostkey = /keys/hostkey.pem

[gossip]
cache_size = 50        # items
degree = 30
bootstrapper = host:6001
p2p_address = 131.159.15.61:6001
api_address = 131.159.15.61:7001

[rps]
api_address = 127.0.0.1:7101

[nse]
api_address = 127.0.0.1:7201
`,
    );
    expect(c.hostkeyPath).toBe("/keys/hostkey.pem");
    expect(c.cacheSize).toBe(50);
    expect(c.degree).toBe(30);
    expect(c.bootstrappers).toEqual([{ host: "host", port: 6001 }]);
    expect(c.apiAddress).toEqual({ host: "131.159.15.61", port: 7001 });
    expect(c.rpsApiAddress).toEqual({ host: "127.0.0.1", port: 7101 });
  });

  test("bad values name the key", () => {
    expect(() => fromIni("x.ini", "hostkey = k\n[gossip]\ndegree = lots\n")).toThrow("x.ini: gossip.degree: expected an integer");
    expect(() => fromIni("x.ini", "hostkey = k\n[gossip]\nfoo = 1\n")).toThrow("x.ini: gossip.foo: unknown key");
  });

  test("loadConfigFile picks the format by extension and names an unreadable file", () => {
    const iniPath = join(dir, "node.ini");
    writeFileSync(iniPath, "hostkey = k.pem\n[gossip]\ndegree = 5\n");
    expect(loadConfigFile(iniPath).degree).toBe(5);
    expect(() => loadConfigFile(join(dir, "missing.yaml"))).toThrow("missing.yaml: (file): cannot read");
  });
});

describe("hostkey", () => {
  test("a missing hostkey is created as Ed25519 with mode 0600 and loads the same ID again", () => {
    const c = fromYaml(file, "hostkey: sub/new.pem\n");
    const first = loadOrCreateHostkey(c);
    expect(first.created).toBe(true);
    expect(first.identity.kind).toBe("ed25519");
    expect(statSync(c.hostkeyPath).mode & 0o777).toBe(0o600);
    const second = loadOrCreateHostkey(c);
    expect(second.created).toBe(false);
    expect(second.identity.idHex).toBe(first.identity.idHex);
  });

  test("a VoidPhone RSA key (PKCS#1 PEM) loads", () => {
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const path = join(dir, "rsa.pem");
    writeFileSync(path, privateKey.export({ type: "pkcs1", format: "pem" }));
    const { identity } = loadOrCreateHostkey(fromYaml(file, `hostkey: ${path}\n`));
    expect(identity.kind).toBe("rsa");
  });

  test("a file that is not a key is a config error naming hostkey", () => {
    const path = join(dir, "junk.pem");
    writeFileSync(path, "not a key\n");
    expect(() => loadOrCreateHostkey(fromYaml(file, `hostkey: ${path}\n`))).toThrow(/hostkey: .*junk.pem is not an Ed25519 or RSA private key/);
  });
});

test("embedded default puts the hostkey in the user's data directory", () => {
  const c = defaultConfig({ XDG_DATA_HOME: "/data", HOME: "/home/u" });
  expect(c.hostkeyPath).toBe("/data/gossip/hostkey.pem");
  expect(defaultConfig({ HOME: "/home/u" }).hostkeyPath).toBe("/home/u/.local/share/gossip/hostkey.pem");
  expect(c.apiAddress).toEqual({ host: "127.0.0.1", port: 7001 });
  expect(c.p2pAddress).toEqual({ host: "127.0.0.1", port: 6001 });
});
