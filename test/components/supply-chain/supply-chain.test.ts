import * as os from "node:os";
import { spawnSync } from "node:child_process";
import { loadChartImages } from "../../../lib/chart-images";
import * as fs from "node:fs";
import * as path from "node:path";
import { ClusterPolicy } from "@kubernetes-models/kyverno/kyverno.io/v1/ClusterPolicy";
import * as aws from "@pulumi/aws";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { AdmissionPolicy } from "../../../components/supply-chain/admission-policy";
import { ScanGate } from "../../../components/supply-chain/scan-gate";
import { SigningKey } from "../../../components/supply-chain/signing-key";
import { SigningPolicy } from "../../../components/supply-chain/signing-policy";
import { cosignKmsKeyRef, cosignSignatureTag, cosignSignCommand, cosignVerifyCommand, KEY_ADMIN_ACTIONS, kmsRegionFromKeyRef, signingKeyPolicy, registryAuthSetup } from "../../../components/supply-chain/cosign";
import { MUTABLE_TAG_FILTERS } from "../../../components/registry/ecr";
import { ecrRegistryHost, imageReferencePatterns } from "../../../components/supply-chain/kyverno";
import { type Plan, type PlannedResource, runPlan } from "../../../scripts/lib/plan-runtime";
import { ignoreFileHash } from "../../../components/supply-chain/trivy";
import { PROJECT_ROOT } from "../../../lib/paths";
import { parseDigestRef, requireDigestRef } from "../../../lib/image-ref";

const ROOT = PROJECT_ROOT;
const ACCOUNT = "111122223333";
const REGION = "eu-west-1";
const HOST = `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com`;
const DIGEST = `sha256:${"0123456789abcdef".repeat(4)}`;
const REF = `${HOST}/wb/app-cpu@${DIGEST}`;
const KEY_ARN = `arn:aws:kms:${REGION}:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
const KEY_REF = `awskms:///${KEY_ARN}`;
const SIGNER = `arn:aws:iam::${ACCOUNT}:role/workbench-deploy`;
const SECRET_TOKEN = "not-a-real-ecr-token-0f9e8d";
const TAG_MESSAGE = (ref: string, what: string) =>
  `args.ref must be an image reference pinned by digest (repository@sha256:<64 hex>), got ${JSON.stringify(ref)}: ` +
  `${what} a digest, never a tag, because a tag can later point at other content. Pass the image's imageRef (or the ScanGate's scannedRef).`;

describe("cosign command lines", () => {
  it("signs the digest with the KMS key, credentials only as shell variables, annotations sorted and quoted", () => {
    expect(
      cosignSignCommand({
        ref: REF,
        keyRef: KEY_REF,
        tlogUpload: false,
        annotations: { "workbench-images/variant": "app cpu", "workbench-images/stack": "dev" },
      }),
    ).toBe(
      `${registryAuthSetup(REF)} && cosign sign --yes --key ${KEY_REF} --tlog-upload=false ` +
        `-a workbench-images/stack=dev -a 'workbench-images/variant=app cpu' ${REF}`,
    );
  });

  it("uploads to the transparency log only when asked, and drops registry flags without credentials", () => {
    expect(cosignSignCommand({ ref: REF, keyRef: KEY_REF, tlogUpload: true, registryAuth: false })).toBe(
      `cosign sign --yes --key ${KEY_REF} --tlog-upload=true ${REF}`,
    );
  });

  it("refuses to sign with any cosign but the one signing.cosignVersion pins (checked by running the guard)", () => {
    const cmd = cosignSignCommand({ ref: REF, keyRef: KEY_REF, tlogUpload: false, registryAuth: false, cosignVersion: "v2.5.3" });
    expect(cmd).toBe(
      `{ cosign version --json 2>/dev/null | grep -Eq '"gitVersion": *"v2\\.5\\.3"' || { echo "cosign on PATH is not v2.5.3, the version signing.cosignVersion pins: install v2.5.3 (docs/supply-chain.md, Tool versions)" >&2; exit 1; }; } && ` +
        `cosign sign --yes --key ${KEY_REF} --tlog-upload=false ${REF}`,
    );
    // A stand-in cosign on PATH that prints release-utils' version JSON and records what it was asked to do.
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), "wb-cosign-"));
    try {
      const run = (version: string) => {
        fs.writeFileSync(
          path.join(bin, "cosign"),
          `#!/bin/sh\nif [ "$1" = version ]; then printf '{\\n  "gitVersion": "${version}",\\n  "gitCommit": "0"\\n}\\n'; else echo "signed $*"; fi\n`,
          { mode: 0o755 },
        );
        return spawnSync("/bin/sh", ["-c", cmd], { encoding: "utf8", env: { ...process.env, PATH: `${bin}:${process.env["PATH"]}` } });
      };
      const ok = run("v2.5.3");
      expect([ok.status, ok.stdout]).toEqual([0, `signed sign --yes --key ${KEY_REF} --tlog-upload=false ${REF}\n`]);
      for (const other of ["v3.0.1", "v2.5.30", "v2x5x3"]) {
        const refused = run(other);
        expect([refused.status, refused.stdout, refused.stderr]).toEqual([1, "", "cosign on PATH is not v2.5.3, the version signing.cosignVersion pins: install v2.5.3 (docs/supply-chain.md, Tool versions)\n"]);
      }
    } finally {
      fs.rmSync(bin, { recursive: true, force: true });
    }
    // Composed after a failing step, the guard does not blame cosign: the earlier step's failure stands alone.
    const composed = spawnSync("/bin/sh", ["-c", `false && ${cmd}`], { encoding: "utf8", env: { ...process.env, PATH: `${bin}:${process.env["PATH"]}` } });
    expect([composed.status, composed.stderr]).toEqual([1, ""]);
    expect(() => cosignSignCommand({ ref: REF, keyRef: KEY_REF, tlogUpload: false, cosignVersion: "2.5.3; rm -rf /" })).toThrow(
      'signing.cosignVersion must be a cosign release such as "v2.5.3", got "2.5.3; rm -rf /".',
    );
  });

  it("refuses a reference by tag, by tag and digest, or a truncated digest", () => {
    for (const ref of [`${HOST}/wb/app-cpu:build-abc`, `${HOST}/wb/app-cpu:build-abc@${DIGEST}`, `${HOST}/wb/app-cpu@sha256:abc`]) {
      expect(() => cosignSignCommand({ ref, keyRef: KEY_REF, tlogUpload: false })).toThrow(TAG_MESSAGE(ref, "cosign signs"));
    }
    expect(parseDigestRef(REF)).toEqual({ repository: `${HOST}/wb/app-cpu`, digest: DIGEST });
    expect(requireDigestRef(REF, "x")).toEqual({ repository: `${HOST}/wb/app-cpu`, digest: DIGEST });
  });

  it("refuses a key reference cosign cannot resolve and an annotation key cosign would split", () => {
    expect(() => cosignSignCommand({ ref: REF, keyRef: "alias/workbench", tlogUpload: false })).toThrow(
      'args.keyRef must be an AWS KMS key reference cosign accepts (awskms:///arn:aws:kms:<region>:<account>:key/<id>), got "alias/workbench". Pass the SigningKey\'s cosignKeyRef.',
    );
    expect(() => cosignSignCommand({ ref: REF, keyRef: KEY_REF, tlogUpload: false, annotations: { "a=b": "c" } })).toThrow(
      'args.annotations key "a=b" is not a valid annotation key',
    );
  });

  it("verifies with the key file and skips Rekor exactly when nothing was uploaded there", () => {
    expect(cosignVerifyCommand({ ref: REF, key: "cosign.pub", tlogUpload: false })).toBe(
      `cosign verify --key cosign.pub --insecure-ignore-tlog=true ${REF}`,
    );
    expect(cosignVerifyCommand({ ref: REF, key: KEY_REF, tlogUpload: true, annotations: { "workbench-images/stack": "dev" } })).toBe(
      `cosign verify --key ${KEY_REF} -a workbench-images/stack=dev ${REF}`,
    );
  });

  it("names the key by ARN and reads the region back from it (sigstore's AWS client needs AWS_REGION)", () => {
    expect(cosignKmsKeyRef(KEY_ARN)).toBe(KEY_REF);
    expect(kmsRegionFromKeyRef(KEY_REF)).toBe(REGION);
    expect(kmsRegionFromKeyRef("awskms:///alias/workbench")).toBeUndefined();
  });
});

describe("a second signature of the same digest", () => {
  /** ECR's WILDCARD filter: `*` matches any run of characters. */
  const matches = (filter: string, tag: string) =>
    new RegExp(`^${filter.split("*").map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`).test(tag);

  it("rewrites the sha256-<hex>.sig tag, which the repositories exempt from tag immutability", () => {
    const tag = cosignSignatureTag(DIGEST);
    expect(tag).toBe(`sha256-${"0123456789abcdef".repeat(4)}.sig`);
    const mutable = MUTABLE_TAG_FILTERS.filter((f) => f.filterType === "WILDCARD" && matches(f.filter, tag));
    expect(mutable).toEqual([{ filterType: "WILDCARD", filter: "sha256-*" }]);
    // The exemption is no wider than cosign's tags: the image tags stay immutable.
    expect(MUTABLE_TAG_FILTERS.some((f) => matches(f.filter, "build-0123456789abcdef0123"))).toBe(false);
    expect(MUTABLE_TAG_FILTERS.some((f) => matches(f.filter, "release-2026-01"))).toBe(false);
  });
});

describe("the signing key policy", () => {
  it("lets only the signer roles sign and the account only administer", () => {
    const policy = JSON.parse(signingKeyPolicy({ accountId: ACCOUNT, partition: "aws", signerRoleArns: [SIGNER] }));
    expect(policy).toEqual({
      Version: "2012-10-17",
      Statement: [
        {
          Sid: "AccountAdministersTheKeyButCannotSign",
          Effect: "Allow",
          Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` },
          Action: [
            "kms:CancelKeyDeletion",
            "kms:CreateAlias",
            "kms:DeleteAlias",
            "kms:Describe*",
            "kms:DisableKey",
            "kms:EnableKey",
            "kms:Get*",
            "kms:List*",
            "kms:PutKeyPolicy",
            "kms:RevokeGrant",
            "kms:ScheduleKeyDeletion",
            "kms:TagResource",
            "kms:UntagResource",
            "kms:UpdateAlias",
            "kms:UpdateKeyDescription",
          ],
          Resource: "*",
        },
        {
          Sid: "OnlyTheDeployingRolesSign",
          Effect: "Allow",
          Principal: { AWS: [SIGNER] },
          Action: ["kms:DescribeKey", "kms:GetPublicKey", "kms:Sign"],
          Resource: "*",
        },
      ],
    });
    // No administrative wildcard may reach Sign or CreateGrant (a grant could hand Sign to anyone).
    for (const action of KEY_ADMIN_ACTIONS) {
      for (const forbidden of ["kms:Sign", "kms:CreateGrant", "kms:ReplicateKey"]) {
        expect(new RegExp(`^${action.replace("*", ".*")}$`).test(forbidden), `${action} covers ${forbidden}`).toBe(false);
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Under Pulumi's mock runtime: the components' resources, inputs and dependency edges.

const PROJECT = "workbench-images";

function only(plan: Plan, type: string, name: string): PlannedResource {
  const found = plan.resources.filter((r) => r.type === type && r.name === name);
  if (found.length !== 1) throw new Error(`expected one ${type} named ${name}, found ${found.length}`);
  return found[0]!;
}

async function planSupplyChain(options: { protect: boolean; ref?: pulumi.Input<string>; requireAttestations?: boolean }): Promise<Plan> {
  return runPlan({
    project: PROJECT,
    stack: "test",
    config: {},
    secretKeys: [],
    program: () => {
      const provider = new aws.Provider("aws", { region: REGION, allowedAccountIds: [ACCOUNT] });
      const cluster = new k8s.Provider("cluster", { kubeconfig: "~/.kube/config", context: "kind-test" });
      const credentials = { username: "AWS", password: pulumi.secret(SECRET_TOKEN) };
      const key = new SigningKey(
        "signing",
        { keyAlias: "alias/workbench-images-test", signerRoleArns: [SIGNER], accountId: ACCOUNT, protect: options.protect },
        { providers: [provider] },
      );
      const scan = new ScanGate("app-cpu-scan", { ref: options.ref ?? pulumi.output(REF), projectRoot: ROOT, ignoreFile: ".trivyignore.yaml", credentials });
      const signed = new SigningPolicy("app-cpu-sign", {
        ref: scan.scannedRef,
        keyRef: key.cosignKeyRef,
        tlogUpload: false,
        annotations: { "workbench-images/variant": "app-cpu" },
        credentials,
      });
      const admission = new AdmissionPolicy(
        "admission",
        {
          admission: { installKyverno: true, kyvernoChartVersion: "3.5.2", kyvernoNamespace: "kyverno" },
          imageReferences: imageReferencePatterns(ecrRegistryHost(ACCOUNT, REGION), "wb"),
          namespaces: ["workbench-validation", "jupyterhub"],
          publicKeyPem: key.publicKeyPem,
          tlogUpload: false,
          kyvernoServiceAccountRoleArn: `arn:aws:iam::${ACCOUNT}:role/kyverno-ecr-read`,
          ...(options.requireAttestations !== undefined ? { requireAttestations: options.requireAttestations } : {}),
          chartImages: loadChartImages(),
        },
        { providers: [cluster] },
      );
      return {
        cosignKeyRef: key.cosignKeyRef,
        publicKeyPem: key.publicKeyPem,
        scannedRef: scan.scannedRef,
        signedRef: signed.signedRef,
        policyName: admission.policyName,
      };
    },
  });
}

describe("ScanGate → SigningPolicy under the mock runtime", () => {
  it("scans the digest with Trivy, the pull password only as a secret in the environment", async () => {
    const plan = await planSupplyChain({ protect: false });
    const scan = only(plan, "command:local:Command", "app-cpu-scan-trivy");
    const create =
      `trivy image --image-src remote --scanners vuln,secret --severity CRITICAL,HIGH --ignorefile .trivyignore.yaml ` +
      `--exit-code 1 --no-progress --timeout 30m --format table ${REF}`;
    const hash = ignoreFileHash(fs.readFileSync(path.join(ROOT, ".trivyignore.yaml"), "utf8"));
    expect(scan.inputs).toEqual({
      create,
      environment: { TRIVY_PASSWORD: "[secret]", TRIVY_USERNAME: "AWS" },
      interpreter: ["/bin/sh", "-c"],
      triggers: [DIGEST, hash, create],
      update: "true",
    });
    expect(scan.parent).toBe(only(plan, "workbench:scan:ScanGate", "app-cpu-scan").urn);
    expect(JSON.stringify(plan.resources)).not.toContain(SECRET_TOKEN);
  });

  it("signs only after the scan, by digest, with the key's ARN and region, and re-runs only for a new digest or command", async () => {
    const plan = await planSupplyChain({ protect: false });
    const scan = only(plan, "command:local:Command", "app-cpu-scan-trivy");
    const key = only(plan, "aws:kms/key:Key", "signing-key");
    const sign = only(plan, "command:local:Command", "app-cpu-sign-cosign");
    expect(sign.dependencies).toContain(scan.urn);
    expect(sign.propertyDependencies["create"]).toEqual([scan.urn, key.urn].sort());
    expect(sign.propertyDependencies["triggers"]).toContain(scan.urn);

    const keyArn = `arn:aws:kms:${REGION}:${ACCOUNT}:key/${(plan.outputs["cosignKeyRef"] as string).split("/").pop()}`;
    expect(plan.outputs["cosignKeyRef"]).toBe(`awskms:///${keyArn}`);
    const create =
      `${registryAuthSetup(REF)} && cosign sign --yes --key awskms:///${keyArn} --tlog-upload=false ` +
      `-a workbench-images/variant=app-cpu ${REF}`;
    expect(sign.inputs).toEqual({
      create,
      environment: { AWS_REGION: REGION, REGISTRY_PASSWORD: "[secret]", REGISTRY_USERNAME: "AWS" },
      interpreter: ["/bin/sh", "-c"],
      triggers: [DIGEST, create],
      update: "true",
    });
    expect(create).toContain("@sha256:");
    expect(create).not.toContain(SECRET_TOKEN);
    expect(plan.outputs["scannedRef"]).toBe(REF);
    expect(plan.outputs["signedRef"]).toBe(REF);
  });

  it("creates the KMS key, its alias and reads its public key (unprotected outside prod)", async () => {
    const plan = await planSupplyChain({ protect: false });
    const key = only(plan, "aws:kms/key:Key", "signing-key");
    const { policy, ...rest } = key.inputs as { policy: string } & Record<string, unknown>;
    expect(rest).toEqual({
      customerMasterKeySpec: "ECC_NIST_P256",
      deletionWindowInDays: 30,
      description: "cosign signing key for workbench images (alias/workbench-images-test)",
      enableKeyRotation: false,
      keyUsage: "SIGN_VERIFY",
      tags: { "workbench-images/purpose": "cosign-signing" },
    });
    expect(policy).toBe(signingKeyPolicy({ accountId: ACCOUNT, partition: "aws", signerRoleArns: [SIGNER] }));
    expect(key.options?.protect).toBeUndefined();
    const alias = only(plan, "aws:kms/alias:Alias", "signing-alias");
    expect(alias.inputs["name"]).toBe("alias/workbench-images-test");
    expect(alias.propertyDependencies["targetKeyId"]).toEqual([key.urn]);
    expect(plan.outputs["publicKeyPem"]).toMatch(/^-----BEGIN PUBLIC KEY-----\n[A-Za-z0-9+/=\n]+-----END PUBLIC KEY-----\n$/);
  });

  it("protects and retains the key and alias when asked (prod)", async () => {
    const plan = await planSupplyChain({ protect: true });
    expect(only(plan, "aws:kms/key:Key", "signing-key").options).toMatchObject({ protect: true, retainOnDelete: true });
    expect(only(plan, "aws:kms/alias:Alias", "signing-alias").options).toMatchObject({ protect: true, retainOnDelete: true });
  });

  it("installs Kyverno and applies a ClusterPolicy over our repositories that depends on the release", async () => {
    const plan = await planSupplyChain({ protect: false });
    const release = only(plan, "kubernetes:helm.sh/v3:Release", "admission-kyverno");
    expect(release.inputs).toMatchObject({
      atomic: true,
      chart: "kyverno",
      createNamespace: true,
      name: "kyverno",
      namespace: "kyverno",
      repositoryOpts: { repo: "https://kyverno.github.io/kyverno/" },
      timeout: 600,
      values: { admissionController: { rbac: { serviceAccount: { annotations: { "eks.amazonaws.com/role-arn": `arn:aws:iam::${ACCOUNT}:role/kyverno-ecr-read` } } } } },
      version: "3.5.2",
    });
    const policy = only(plan, "kubernetes:kyverno.io/v1:ClusterPolicy", "admission-policy");
    expect(policy.dependencies).toContain(release.urn);
    expect(plan.outputs["policyName"]).toBe("workbench-images-signed");
    const spec = policy.inputs["spec"] as { rules: { verifyImages: { imageReferences: string[]; attestors: { entries: { keys: { publicKeys: string } }[] }[] }[] }[] };
    const verify = spec.rules[0]!.verifyImages[0]!;
    expect(verify.imageReferences).toEqual([`${HOST}/wb/*`, `${HOST}/wb-*/*`]);
    expect(verify.attestors[0]!.entries[0]!.keys.publicKeys).toBe(plan.outputs["publicKeyPem"]);
    expect(() => new ClusterPolicy(policy.inputs as ConstructorParameters<typeof ClusterPolicy>[0]).validate()).not.toThrow();
  });
});

describe("AdmissionPolicy with requireAttestations", () => {
  it("passes the setting to the ClusterPolicy: SBOM and provenance attestations by the stack key", async () => {
    const plan = await planSupplyChain({ protect: false, requireAttestations: true });
    const policy = only(plan, "kubernetes:kyverno.io/v1:ClusterPolicy", "admission-policy");
    const spec = policy.inputs["spec"] as { rules: { verifyImages: { attestors: unknown[]; attestations: { type: string; attestors: unknown[] }[] }[] }[] };
    const verify = spec.rules[0]!.verifyImages[0]!;
    expect(verify.attestations.map((a) => a.type)).toEqual(["https://cyclonedx.org/bom", "https://slsa.dev/provenance/v1"]);
    for (const a of verify.attestations) expect(a.attestors).toEqual(verify.attestors);
    expect((policy.inputs["metadata"] as { annotations: Record<string, string> }).annotations["policies.kyverno.io/title"]).toBe(
      "Workbench images are signed and attested",
    );
    expect(() => new ClusterPolicy(policy.inputs as ConstructorParameters<typeof ClusterPolicy>[0]).validate()).not.toThrow();
  });

  it("requires the signature only when not set", async () => {
    const plan = await planSupplyChain({ protect: false });
    const spec = only(plan, "kubernetes:kyverno.io/v1:ClusterPolicy", "admission-policy").inputs["spec"] as { rules: { verifyImages: object[] }[] };
    expect(spec.rules[0]!.verifyImages[0]).not.toHaveProperty("attestations");
  });
});

/** The message a promise rejects with (fails the test when it resolves). */
async function rejection(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (e) {
    // The component was half-registered when its constructor threw: let those RPCs finish against this run's mock
    // monitor, or they reach the next run's and reject there ("unknown resource").
    await (pulumi.runtime as unknown as { waitForRPCs(): Promise<void> }).waitForRPCs().catch(() => undefined);
    return e instanceof Error ? e.message : String(e);
  }
  throw new Error("expected a rejection");
}

// Only plain-string refs are tested here: a bad ref inside an Output fails when it resolves, as an error serializing
// the command's inputs, which the mock runtime surfaces as an unhandled rejection rather than a failed runPlan.
describe("bad input fails before anything runs", () => {
  it("a SigningPolicy given a reference by tag fails with the exact message", async () => {
    const tagRef = `${HOST}/wb/app-cpu:build-abc`;
    const message = await rejection(
      runPlan({
        project: PROJECT,
        stack: "test",
        config: {},
        secretKeys: [],
        program: () => new SigningPolicy("bad", { ref: tagRef, keyRef: KEY_REF, tlogUpload: false }),
      }),
    );
    expect(message).toBe(`SigningPolicy "bad": ${TAG_MESSAGE(tagRef, "cosign signs")}`);
  });

  it("a SigningKey without a signer role fails with the exact message", async () => {
    const message = await rejection(
      runPlan({
        project: PROJECT,
        stack: "test",
        config: {},
        secretKeys: [],
        program: () => new SigningKey("k", { keyAlias: "alias/x", signerRoleArns: ["arn:aws:iam::1:user/me"], accountId: ACCOUNT }),
      }),
    );
    expect(message).toBe(
      'SigningKey "k": args.signerRoleArns[0] must be an IAM role ARN (arn:aws:iam::<account>:role/<name>), got "arn:aws:iam::1:user/me".',
    );
  });

  it("a ScanGate given a reference by tag fails with the exact message", async () => {
    const tagRef = `${HOST}/wb/app-cpu:latest`;
    const message = await rejection(
      runPlan({
        project: PROJECT,
        stack: "test",
        config: {},
        secretKeys: [],
        program: () => new ScanGate("bad-scan", { ref: tagRef, projectRoot: ROOT, ignoreFile: ".trivyignore.yaml" }),
      }),
    );
    expect(message).toBe(`ScanGate "bad-scan": ${TAG_MESSAGE(tagRef, "the scan gate scans")}`);
  });

  it("a ScanGate whose ignore file Trivy would not read as YAML, or that does not exist, fails with the exact message", async () => {
    const plan = (ignoreFile: string) =>
      rejection(
        runPlan({
          project: PROJECT,
          stack: "test",
          config: {},
          secretKeys: [],
          program: () => new ScanGate("scan", { ref: REF, projectRoot: ROOT, ignoreFile }),
        }),
      );
    expect(await plan(".trivyignore")).toBe(
      'ScanGate "scan": args.ignoreFile must be a .yaml or .yml file (Trivy reads the YAML format only by that extension), got ".trivyignore".',
    );
    expect(await plan("security/missing.yaml")).toBe(
      `ScanGate "scan": the Trivy ignore file security/missing.yaml does not exist under ${ROOT}. Create it (one that ignores nothing is "vulnerabilities: []") or point scan.ignoreFile at it.`,
    );
  });
});
