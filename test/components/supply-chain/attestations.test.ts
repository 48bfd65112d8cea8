import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as aws from "@pulumi/aws";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { PromotedImage } from "../../../components/promotion/promoted-image";
import { ATTESTATION_PREDICATE_TYPES, cosignAttestCommand, cosignVerifyAttestationCommand, registryAuthSetup } from "../../../components/supply-chain/cosign";
import { type GatedImage, gateImage, type GateSettings, provenanceText, type StoredImage } from "../../../components/supply-chain/gate-image";
import { type ImageOrigin, provenanceJson, provenancePredicate } from "../../../components/supply-chain/provenance";
import { SigningKey } from "../../../components/supply-chain/signing-key";
import { PROJECT_ROOT } from "../../../lib/paths";
import { type Plan, type PlannedResource, runPlan } from "../../../scripts/lib/plan-runtime";

const ACCOUNT = "111122223333";
const REGION = "eu-west-1";
const HOST = `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com`;
const HEX = "0123456789abcdef".repeat(4);
const DIGEST = `sha256:${HEX}`;
const REF = `${HOST}/wb/app-cpu@${DIGEST}`;
const KEY_ARN = `arn:aws:kms:${REGION}:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
const KEY_REF = `awskms:///${KEY_ARN}`;
const SIGNER = `arn:aws:iam::${ACCOUNT}:role/workbench-deploy`;
const SECRET_TOKEN = "not-a-real-ecr-token-1a2b3c";
const BASE = `docker.io/library/ubuntu:22.04@sha256:${"22".repeat(32)}`;
const BUILDER = { id: "https://github.com/workbench-images/workbench-images/pulumi-program@v0.1.0", version: { "workbench-images": "0.1.0" } };
const SOURCE = { url: "https://github.com/workbench-images/workbench-images", revision: "c".repeat(40) };
const TAG = "build-0123456789abcdef0123";
const BUILD: ImageOrigin = {
  kind: "build",
  context: "images/app",
  dockerfile: "images/app/Dockerfile",
  platforms: ["linux/amd64"],
  buildArgs: { PYTHON_VERSION: "3.11" },
  bases: { BASE_IMAGE: BASE },
  source: SOURCE,
};
const AUTH = `${registryAuthSetup(REF)} && `;

describe("cosign attest command lines", () => {
  it("attests a predicate file to the digest with the KMS key, replacing an earlier one of the same type", () => {
    expect(cosignAttestCommand({ ref: REF, keyRef: KEY_REF, type: "cyclonedx", predicate: "out/sbom.cdx.json", tlogUpload: false })).toBe(
      `${AUTH}cosign attest --yes --key ${KEY_REF} --type cyclonedx --predicate out/sbom.cdx.json --replace --tlog-upload=false ${REF}`,
    );
    expect(cosignAttestCommand({ ref: REF, keyRef: KEY_REF, type: "slsaprovenance1", predicate: "a b.json", tlogUpload: true, registryAuth: false })).toBe(
      `cosign attest --yes --key ${KEY_REF} --type slsaprovenance1 --predicate 'a b.json' --replace --tlog-upload=true ${REF}`,
    );
  });

  it("names the predicate types Kyverno matches (cosign v2.5.3 PredicateTypeMap)", () => {
    expect(ATTESTATION_PREDICATE_TYPES).toEqual({ cyclonedx: "https://cyclonedx.org/bom", slsaprovenance1: "https://slsa.dev/provenance/v1" });
  });

  it("refuses a tag, a key cosign cannot resolve, an unknown type and no predicate file", () => {
    const tagRef = `${HOST}/wb/app-cpu:latest`;
    expect(() => cosignAttestCommand({ ref: tagRef, keyRef: KEY_REF, type: "cyclonedx", predicate: "f", tlogUpload: false })).toThrow(
      `args.ref must be an image reference pinned by digest (repository@sha256:<64 hex>), got "${tagRef}": cosign attests a digest, never a tag`,
    );
    expect(() => cosignAttestCommand({ ref: REF, keyRef: "alias/x", type: "cyclonedx", predicate: "f", tlogUpload: false })).toThrow(
      'args.keyRef must be an AWS KMS key reference cosign accepts (awskms:///arn:aws:kms:<region>:<account>:key/<id>), got "alias/x".',
    );
    expect(() => cosignAttestCommand({ ref: REF, keyRef: KEY_REF, type: "spdx" as "cyclonedx", predicate: "f", tlogUpload: false })).toThrow(
      'args.type must be one of cyclonedx, slsaprovenance1 or an https predicate type URI, got "spdx".',
    );
    expect(() => cosignAttestCommand({ ref: REF, keyRef: KEY_REF, type: "cyclonedx", predicate: " ", tlogUpload: false })).toThrow(
      'args.predicate must name the predicate file, got "".',
    );
  });

  it("verifies an attestation with the public key, skipping Rekor exactly when nothing was uploaded", () => {
    expect(cosignVerifyAttestationCommand({ ref: REF, key: "cosign.pub", type: "slsaprovenance1", tlogUpload: false })).toBe(
      `cosign verify-attestation --key cosign.pub --type slsaprovenance1 --insecure-ignore-tlog=true ${REF}`,
    );
    expect(cosignVerifyAttestationCommand({ ref: REF, key: KEY_REF, type: "cyclonedx", tlogUpload: true })).toBe(
      `cosign verify-attestation --key ${KEY_REF} --type cyclonedx ${REF}`,
    );
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Under Pulumi's mock runtime: the chain scan → sign → attest → downstream, its exact inputs and dependency edges.

function only(plan: Plan, type: string, name: string): PlannedResource {
  const found = plan.resources.filter((r) => r.type === type && r.name === name);
  if (found.length !== 1) throw new Error(`expected one ${type} named ${name}, found ${found.length}`);
  return found[0]!;
}
const cmd = (plan: Plan, name: string) => only(plan, "command:local:Command", name);

interface Scenario {
  signing: boolean;
  /** The stored image; built by the program when a function. */
  stored?: () => { stored: StoredImage; origin: ImageOrigin<pulumi.Input<string>>; id: string };
}

async function plan(s: Scenario): Promise<Plan> {
  return runPlan({
    project: "workbench-images",
    stack: "test",
    config: {},
    secretKeys: [],
    program: () => {
      const provider = new aws.Provider("aws", { region: REGION, allowedAccountIds: [ACCOUNT] });
      const credentials = { address: HOST, username: "AWS", password: pulumi.secret(SECRET_TOKEN) };
      const key = s.signing
        ? new SigningKey("signing", { keyAlias: "alias/wb-test", signerRoleArns: [SIGNER], accountId: ACCOUNT }, { providers: [provider] })
        : undefined;
      const made = s.stored?.() ?? {
        id: "app-cpu",
        stored: { imageRef: pulumi.output(REF), repositoryUrl: pulumi.output(`${HOST}/wb/app-cpu`), tag: TAG, digest: DIGEST },
        origin: BUILD,
      };
      const settings: GateSettings = {
        scan: { projectRoot: PROJECT_ROOT, ignoreFile: ".trivyignore.yaml", severities: ["CRITICAL", "HIGH"] },
        attestations: { outputDir: ".attestations/test/", builder: BUILDER },
        ...(key ? { signing: { keyRef: key.cosignKeyRef, tlogUpload: false }, credentials } : {}),
      };
      const gated: GatedImage = gateImage(made.id, made.stored, settings, made.origin);
      // What validation and the hub do with a gated ref: consume it.
      new command.local.Command("consumer", { create: pulumi.interpolate`echo ${gated.imageRef}` });
      return {
        imageRef: gated.imageRef,
        ...gated.evidence,
        sbomFile: gated.files!.sbom,
        provenanceFile: gated.files!.provenance,
        keyRef: key?.cosignKeyRef ?? "",
      };
    },
  });
}

describe("gateImage: scan → sign → attest, with a signing key (dev, prod)", () => {
  it("generates the SBOM with trivy and attests it as cyclonedx, with the scan's and the signature's credential handling", async () => {
    const p = await plan({ signing: true });
    const keyRef = p.outputs["keyRef"] as string;
    const file = `.attestations/test/app-cpu/sha256-${HEX}.cdx.json`;
    const create =
      `mkdir -p .attestations/test/app-cpu && ` +
      `trivy image --image-src remote --format cyclonedx --output ${file} --no-progress --timeout 30m ${REF} && ` +
      `${AUTH}cosign attest --yes --key ${keyRef} --type cyclonedx --predicate ${file} --replace --tlog-upload=false ${REF}`;
    const sbom = cmd(p, "app-cpu-attest-sbom");
    expect(sbom.inputs).toEqual({
      create,
      environment: { AWS_REGION: REGION, REGISTRY_PASSWORD: "[secret]", REGISTRY_USERNAME: "AWS", TRIVY_PASSWORD: "[secret]", TRIVY_USERNAME: "AWS" },
      interpreter: ["/bin/sh", "-c"],
      triggers: [DIGEST, create],
      update: "true",
    });
    expect(sbom.parent).toBe(only(p, "workbench:attest:Attestations", "app-cpu-attest").urn);
    expect(p.outputs["sbomFile"]).toBe(file);
    expect(JSON.stringify(p.resources)).not.toContain(SECRET_TOKEN);
  });

  it("writes our provenance predicate from the environment and attests it as slsaprovenance1", async () => {
    const p = await plan({ signing: true });
    const keyRef = p.outputs["keyRef"] as string;
    const file = `.attestations/test/app-cpu/sha256-${HEX}.provenance.json`;
    const create =
      `mkdir -p .attestations/test/app-cpu && printf '%s' "$WORKBENCH_PROVENANCE" > ${file} && ` +
      `${AUTH}cosign attest --yes --key ${keyRef} --type slsaprovenance1 --predicate ${file} --replace --tlog-upload=false ${REF}`;
    const json = provenanceJson(provenancePredicate({ builder: BUILDER, tag: TAG, digest: DIGEST, origin: BUILD }));
    const provenance = cmd(p, "app-cpu-attest-provenance");
    expect(provenance.inputs).toEqual({
      create,
      // The predicate in plain text: no secret reaches it (a secret would read "[secret]" here).
      environment: { AWS_REGION: REGION, REGISTRY_PASSWORD: "[secret]", REGISTRY_USERNAME: "AWS", WORKBENCH_PROVENANCE: json },
      interpreter: ["/bin/sh", "-c"],
      triggers: [DIGEST, create, json],
      update: "true",
    });
    expect(p.outputs["provenanceFile"]).toBe(file);
  });

  it("orders the chain: scan → sign → SBOM → provenance → whatever consumes the gated ref", async () => {
    const p = await plan({ signing: true });
    const scan = cmd(p, "app-cpu-scan-trivy");
    const sign = cmd(p, "app-cpu-sign-cosign");
    const sbom = cmd(p, "app-cpu-attest-sbom");
    const provenance = cmd(p, "app-cpu-attest-provenance");
    expect(sign.propertyDependencies["create"]).toContain(scan.urn);
    // Attesting waits for the signature: its ref is the signed ref.
    expect(sbom.propertyDependencies["create"]).toContain(sign.urn);
    expect(provenance.propertyDependencies["create"]).toContain(sign.urn);
    // The two attests never run at once: cosign rewrites the digest's one .att tag each time.
    expect(provenance.dependencies).toContain(sbom.urn);
    expect(sbom.dependencies).not.toContain(provenance.urn);
    const consumer = cmd(p, "consumer");
    expect(consumer.propertyDependencies["create"]).toEqual(expect.arrayContaining([scan.urn, sign.urn, sbom.urn, provenance.urn]));
    expect(p.outputs["imageRef"]).toBe(REF);
    expect([p.outputs["scanned"], p.outputs["signed"], p.outputs["attested"]]).toEqual([true, true, true]);
  });

  it("a per-user image's base (another image's Output) reaches the provenance, and the command waits for it", async () => {
    const p = await plan({
      signing: true,
      stored: () => {
        const base = new command.local.Command("base-image", { create: "true" });
        const baseRef = base.id.apply(() => BASE);
        return {
          id: "user-h-baker-thesis",
          stored: { imageRef: pulumi.output(`${HOST}/wb-1722830498/thesis@${DIGEST}`), repositoryUrl: pulumi.output(`${HOST}/wb-1722830498/thesis`), tag: TAG, digest: DIGEST },
          origin: { ...BUILD, bases: { BASE_IMAGE: baseRef } },
        };
      },
    });
    const provenance = cmd(p, "user-h-baker-thesis-attest-provenance");
    expect(provenance.propertyDependencies["environment"]).toContain(cmd(p, "base-image").urn);
    const env = provenance.inputs["environment"] as Record<string, string>;
    expect(JSON.parse(env["WORKBENCH_PROVENANCE"]!).buildDefinition.externalParameters.bases).toEqual({ BASE_IMAGE: BASE });
  });

  it("promote mode: prod runs the same chain on the copied digest and its provenance records the promotion source", async () => {
    const PROD = "444455556666";
    const PROD_HOST = `${PROD}.dkr.ecr.${REGION}.amazonaws.com`;
    const source = `${HOST}/wb/universal@${DIGEST}`;
    const p = await plan({
      signing: true,
      stored: () => {
        const promoted = new PromotedImage("universal", {
          name: "universal",
          promoted: { digest: DIGEST, source, validatedPools: ["h100"] },
          repositoryName: "wb/universal",
          registry: { kind: "ecr", region: REGION, accountId: PROD, repositoryPrefix: "wb", lifecycle: { keepTagged: 10, untaggedExpireDays: 7 }, forceDelete: false, pullAccountIds: [] },
          protect: false,
        }, { providers: [new aws.Provider("aws-prod", { region: REGION, allowedAccountIds: [PROD] })] });
        return {
          id: "universal",
          stored: promoted,
          origin: { kind: "promotion", sourceRef: source, fromStack: "dev", validatedPools: ["h100"], source: { url: SOURCE.url } },
        };
      },
    });
    const copy = cmd(p, "universal-copy");
    const sign = cmd(p, "universal-sign-cosign");
    const sbom = cmd(p, "universal-attest-sbom");
    const provenance = cmd(p, "universal-attest-provenance");
    for (const c of [sign, sbom, provenance]) expect(c.propertyDependencies["create"]).toContain(copy.urn);
    expect(sbom.propertyDependencies["create"]).toContain(sign.urn);
    expect(provenance.dependencies).toContain(sbom.urn);
    expect(String(provenance.inputs["create"])).toMatch(new RegExp(`--type slsaprovenance1 .* ${PROD_HOST.replace(/\./g, "\\.")}/wb/universal@${DIGEST}$`));
    const env = provenance.inputs["environment"] as Record<string, string>;
    expect(env["WORKBENCH_PROVENANCE"]).toBe(
      provenanceJson(
        provenancePredicate({
          builder: BUILDER,
          tag: "promoted-0123456789ab",
          digest: DIGEST,
          origin: { kind: "promotion", sourceRef: source, fromStack: "dev", validatedPools: ["h100"], source: { url: SOURCE.url } },
        }),
      ),
    );
    expect(cmd(p, "consumer").propertyDependencies["create"]).toEqual(expect.arrayContaining([sbom.urn, provenance.urn]));
  });
});

describe("gateImage without a signing key (local stack)", () => {
  it("writes the SBOM and provenance files, attests nothing, and says so in its evidence", async () => {
    const LOCAL = `127.0.0.1:5001/wb/app-cpu@${DIGEST}`;
    const p = await plan({
      signing: false,
      stored: () => ({
        id: "app-cpu",
        stored: { imageRef: pulumi.output(LOCAL), repositoryUrl: pulumi.output("127.0.0.1:5001/wb/app-cpu"), tag: TAG, digest: DIGEST },
        origin: BUILD,
      }),
    });
    const dir = ".attestations/test/app-cpu";
    const sbomCreate = `mkdir -p ${dir} && trivy image --image-src remote --format cyclonedx --output ${dir}/sha256-${HEX}.cdx.json --no-progress --timeout 30m ${LOCAL}`;
    expect(cmd(p, "app-cpu-attest-sbom").inputs).toEqual({ create: sbomCreate, interpreter: ["/bin/sh", "-c"], triggers: [DIGEST, sbomCreate], update: "true" });
    const json = provenanceJson(provenancePredicate({ builder: BUILDER, tag: TAG, digest: DIGEST, origin: BUILD }));
    const provCreate = `mkdir -p ${dir} && printf '%s' "$WORKBENCH_PROVENANCE" > ${dir}/sha256-${HEX}.provenance.json`;
    expect(cmd(p, "app-cpu-attest-provenance").inputs).toEqual({
      create: provCreate,
      environment: { WORKBENCH_PROVENANCE: json },
      interpreter: ["/bin/sh", "-c"],
      triggers: [DIGEST, provCreate, json],
      update: "true",
    });
    expect(p.resources.some((r) => r.name.endsWith("-sign-cosign"))).toBe(false);
    expect(JSON.stringify(p.resources)).not.toContain("cosign");
    expect([p.outputs["scanned"], p.outputs["signed"], p.outputs["attested"]]).toEqual([true, false, false]);
    expect(cmd(p, "consumer").propertyDependencies["create"]).toEqual(
      expect.arrayContaining([cmd(p, "app-cpu-attest-sbom").urn, cmd(p, "app-cpu-attest-provenance").urn]),
    );
  });
});

/** The value of an Output outside a deployment, rejections included (none left unhandled). */
function settle<T>(out: pulumi.Output<T>): Promise<T> {
  const o = out as unknown as { promise(): Promise<T>; isKnown: Promise<boolean>; isSecret: Promise<boolean> };
  o.isKnown.catch(() => undefined);
  o.isSecret.catch(() => undefined);
  return o.promise();
}

describe("nothing secret reaches a provenance predicate", () => {
  const stored = (tag: pulumi.Input<string>): StoredImage => ({ imageRef: pulumi.output(REF), repositoryUrl: pulumi.output(`${HOST}/wb/app-cpu`), tag, digest: DIGEST });
  const SECRET_MESSAGE =
    'gateImage "app-cpu": a provenance fact (the tag, the digest or a base image reference) is a Pulumi secret. Provenance is pushed next to the image ' +
    "for anyone who can pull it to read: pass those facts in plain text, or leave the secret out.";

  it("refuses a fact marked secret (tag, or a base reference), and passes plain facts through unchanged", async () => {
    await expect(settle(provenanceText("app-cpu", stored(pulumi.secret(TAG)), BUILD, BUILDER))).rejects.toThrow(SECRET_MESSAGE);
    await expect(settle(provenanceText("app-cpu", stored(TAG), { ...BUILD, bases: { BASE_IMAGE: pulumi.secret(BASE) } }, BUILDER))).rejects.toThrow(SECRET_MESSAGE);
    expect(await settle(provenanceText("app-cpu", stored(TAG), BUILD, BUILDER))).toBe(
      provenanceJson(provenancePredicate({ builder: BUILDER, tag: TAG, digest: DIGEST, origin: BUILD })),
    );
  });

  it("refuses a plain base not pinned by digest at once, before any resource", () => {
    expect(() => provenanceText("app-cpu", stored(TAG), { ...BUILD, bases: { BASE_IMAGE: "ubuntu:22.04" } }, BUILDER)).toThrow(
      'gateImage "app-cpu": origin.bases.BASE_IMAGE must be an image reference pinned by digest (repository[:tag]@sha256:<64 hex>), got "ubuntu:22.04".',
    );
  });
});

// Real behaviour of the command texts: the real /bin/sh runs them, with stand-ins for trivy and cosign (neither can
// be installed here) that record the argv they receive, as the shell expanded it.
describe("the attestation commands under a real /bin/sh", () => {
  const STUB = `#!/bin/sh
name=$(basename "$0")
for a in "$@"; do printf '%s\\n' "$a"; done > "$STUB_LOG/$name.$$.args"
if [ "$name" = trivy ]; then
  [ -n "$TRIVY_FAIL" ] && exit 1
  while [ $# -gt 0 ]; do [ "$1" = --output ] && printf '{"bomFormat":"CycloneDX"}' > "$2"; shift; done
fi
if [ "$name" = cosign ]; then
  [ -n "$DOCKER_CONFIG" ] && cp "$DOCKER_CONFIG/config.json" "$STUB_LOG/cosign.$$.dockerconfig"
  while [ $# -gt 0 ]; do [ "$1" = --predicate ] && cp "$2" "$STUB_LOG/cosign.$$.predicate"; shift; done
fi
exit 0
`;

  function run(create: string, env: Record<string, string>): { status: number | null; calls: { tool: string; args: string[]; predicate?: string; dockerConfig?: string }[]; cwd: string } {
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "wb-attest-"));
    const bin = path.join(cwd, "bin");
    const log = path.join(cwd, "log");
    fs.mkdirSync(bin);
    fs.mkdirSync(log);
    for (const tool of ["trivy", "cosign"]) fs.writeFileSync(path.join(bin, tool), STUB, { mode: 0o755 });
    const result = spawnSync("/bin/sh", ["-c", create], { cwd, encoding: "utf8", env: { PATH: `${bin}:/usr/bin:/bin`, STUB_LOG: log, ...env } });
    const calls = fs
      .readdirSync(log)
      .filter((f) => f.endsWith(".args"))
      .map((f) => {
        const [tool, pid] = f.split(".");
        const predicate = path.join(log, `${tool}.${pid}.predicate`);
        const dockerConfig = path.join(log, `${tool}.${pid}.dockerconfig`);
        return {
          ...(fs.existsSync(dockerConfig) ? { dockerConfig: fs.readFileSync(dockerConfig, "utf8") } : {}),
          tool: tool!,
          pid: Number(pid),
          args: fs.readFileSync(path.join(log, f), "utf8").split("\n").slice(0, -1),
          ...(fs.existsSync(predicate) ? { predicate: fs.readFileSync(predicate, "utf8") } : {}),
        };
      })
      .sort((a, b) => (a.tool === b.tool ? a.pid - b.pid : a.tool === "trivy" ? -1 : 1))
      .map(({ pid: _pid, ...c }) => c);
    return { status: result.status, calls, cwd };
  }

  it("SBOM: trivy writes the file, cosign attests that file; the password reaches cosign only through the environment", async () => {
    const p = await plan({ signing: true });
    const keyRef = p.outputs["keyRef"] as string;
    const file = `.attestations/test/app-cpu/sha256-${HEX}.cdx.json`;
    const { status, calls, cwd } = run(String(cmd(p, "app-cpu-attest-sbom").inputs["create"]), { REGISTRY_USERNAME: "AWS", REGISTRY_PASSWORD: "p@ss w'rd" });
    expect(status).toBe(0);
    expect(calls).toEqual([
      { tool: "trivy", args: ["image", "--image-src", "remote", "--format", "cyclonedx", "--output", file, "--no-progress", "--timeout", "30m", REF] },
      {
        tool: "cosign",
        // No password on cosign's command line: it reads a private Docker config the shell wrote (registryAuthSetup).
        args: ["attest", "--yes", "--key", keyRef, "--type", "cyclonedx", "--predicate", file, "--replace", "--tlog-upload=false", REF],
        predicate: '{"bomFormat":"CycloneDX"}',
        dockerConfig: JSON.stringify({ auths: { [REF.split("/")[0]!]: { auth: Buffer.from("AWS:p@ss w'rd").toString("base64") } } }),
      },
    ]);
    expect(fs.readFileSync(path.join(cwd, file), "utf8")).toBe('{"bomFormat":"CycloneDX"}');
    fs.rmSync(cwd, { recursive: true, force: true });
  });

  it("SBOM: a failing trivy stops the command before anything is attested", async () => {
    const p = await plan({ signing: true });
    const { status, calls, cwd } = run(String(cmd(p, "app-cpu-attest-sbom").inputs["create"]), { TRIVY_FAIL: "1" });
    expect(status).toBe(1);
    expect(calls.map((c) => c.tool)).toEqual(["trivy"]);
    fs.rmSync(cwd, { recursive: true, force: true });
  });

  it("provenance: the file holds exactly the predicate from the environment, and cosign attests it", async () => {
    const p = await plan({ signing: true });
    const provenance = cmd(p, "app-cpu-attest-provenance");
    const env = provenance.inputs["environment"] as Record<string, string>;
    const file = `.attestations/test/app-cpu/sha256-${HEX}.provenance.json`;
    const { status, calls, cwd } = run(String(provenance.inputs["create"]), { WORKBENCH_PROVENANCE: env["WORKBENCH_PROVENANCE"]!, REGISTRY_USERNAME: "AWS", REGISTRY_PASSWORD: "x" });
    expect(status).toBe(0);
    expect(fs.readFileSync(path.join(cwd, file), "utf8")).toBe(env["WORKBENCH_PROVENANCE"]);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.args.slice(0, 8)).toEqual(["attest", "--yes", "--key", p.outputs["keyRef"], "--type", "slsaprovenance1", "--predicate", file]);
    expect(JSON.parse(calls[0]!.predicate!)).toEqual(provenancePredicate({ builder: BUILDER, tag: TAG, digest: DIGEST, origin: BUILD }));
    fs.rmSync(cwd, { recursive: true, force: true });
  });
});
