import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** A certificate and its key, as PEM files. */
export interface IssuedCert {
  readonly certFile: string;
  readonly keyFile: string;
  /** Hex, as tls' getPeerCertificate().serialNumber gives it (upper case). */
  readonly serial: string;
}

/** A throwaway certificate authority made with the openssl command, as an operator would. */
export interface TestPki {
  readonly caFile: string;
  readonly caPem: string;
  /** A certificate signed by this CA for localhost, 127.0.0.1 and ::1, good for server and client use. */
  issue(name: string): Promise<IssuedCert>;
  remove(): Promise<void>;
}

const EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

export async function createTestPki(caName = "bazbii test CA"): Promise<TestPki> {
  const dir = await mkdtemp(join(tmpdir(), "bazbii-pki-"));
  const caFile = join(dir, "ca.crt");
  const caKey = join(dir, "ca.key");
  await run("openssl", [
    "req",
    "-x509",
    ...EC_KEY,
    "-keyout",
    caKey,
    "-out",
    caFile,
    "-days",
    "2",
    "-subj",
    `/CN=${caName}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  const extFile = join(dir, "leaf.ext");
  await writeFile(
    extFile,
    "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n",
  );
  let issued = 0;
  return {
    caFile,
    caPem: await readFile(caFile, "utf8"),
    async issue(name) {
      issued++;
      const base = join(dir, `${name}-${issued}`);
      await run("openssl", ["req", ...EC_KEY, "-keyout", `${base}.key`, "-out", `${base}.csr`, "-subj", `/CN=${name}`]);
      // 8 random bytes, positive and without a leading zero byte, so it reads back exactly.
      const bytes = randomBytes(8);
      bytes[0] = 0x10 + ((bytes[0] as number) % 0x60);
      const serial = bytes.toString("hex").toUpperCase();
      await run("openssl", [
        "x509",
        "-req",
        "-in",
        `${base}.csr`,
        "-CA",
        caFile,
        "-CAkey",
        caKey,
        "-set_serial",
        `0x${serial}`,
        "-days",
        "2",
        "-extfile",
        extFile,
        "-out",
        `${base}.crt`,
      ]);
      return { certFile: `${base}.crt`, keyFile: `${base}.key`, serial };
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
