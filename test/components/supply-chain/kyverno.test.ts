import * as fs from "node:fs";
import * as path from "node:path";
import { ClusterPolicy } from "@kubernetes-models/kyverno/kyverno.io/v1/ClusterPolicy";
import Ajv from "ajv";
import { parseAllDocuments } from "yaml";
import { describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../../lib/paths";
import {
  clusterPolicy,
  type ClusterPolicyDocument,
  ecrRegistryHost,
  imageReferencePatterns,
  kyvernoChartValues,
  kyvernoFieldStyle,
} from "../../../components/supply-chain/kyverno";

const HOST = "111122223333.dkr.ecr.eu-west-1.amazonaws.com";
const PEM = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEcurrentkeycurrentkeycurrentkeycurrentkey\n-----END PUBLIC KEY-----\n";
const OLD_PEM = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEoldkeyoldkeyoldkeyoldkeyoldkeyoldkey00\n-----END PUBLIC KEY-----\n";
const NAMESPACES = ["workbench-validation", "jupyterhub"];

/** Validates against Kyverno's ClusterPolicy schema (CRD of Kyverno 1.11, as packaged by @kubernetes-models/kyverno). */
function validate(doc: ClusterPolicyDocument): void {
  new ClusterPolicy(doc as ConstructorParameters<typeof ClusterPolicy>[0]).validate();
}

const KEY_ENTRY = (pem: string) => ({
  keys: { publicKeys: pem, rekor: { url: "https://rekor.sigstore.dev", ignoreTlog: true }, ctlog: { ignoreSCT: true } },
});

const METADATA = {
  name: "workbench-images-signed",
  annotations: {
    "policies.kyverno.io/title": "Workbench images are signed",
    "policies.kyverno.io/description":
      "Pods in the workbench namespaces run images of this program's repositories only by a digest signed with the stack's cosign KMS key.",
  },
};

describe("the ClusterPolicy", () => {
  const base = {
    name: "workbench-images-signed",
    imageReferences: imageReferencePatterns(HOST, "wb"),
    publicKeyPem: PEM,
    namespaces: NAMESPACES,
    tlogUpload: false,
  };

  it("enforces signatures by the stack key on our repositories in our namespaces (Kyverno 1.13+ fields)", () => {
    const doc = clusterPolicy(base);
    expect(doc).toEqual({
      apiVersion: "kyverno.io/v1",
      kind: "ClusterPolicy",
      metadata: METADATA,
      spec: {
        background: false,
        webhookConfiguration: {
          failurePolicy: "Fail",
          timeoutSeconds: 30,
          matchConditions: [{ name: "workbench-namespaces", expression: "request.namespace in ['workbench-validation', 'jupyterhub']" }],
        },
        rules: [
          {
            name: "signed-by-stack-key",
            match: { any: [{ resources: { kinds: ["Pod"], namespaces: NAMESPACES } }] },
            verifyImages: [
              {
                failureAction: "Enforce",
                type: "Cosign",
                imageReferences: [`${HOST}/wb/*`, `${HOST}/wb-*/*`],
                attestors: [{ count: 1, entries: [KEY_ENTRY(PEM)] }],
                mutateDigest: true,
                verifyDigest: true,
                required: true,
              },
            ],
          },
        ],
      },
    });
    // Never both forms of a setting: Kyverno 1.13+ refuses a policy that sets the old and the new one.
    expect(doc.spec).not.toHaveProperty("validationFailureAction");
    expect(doc.spec).not.toHaveProperty("failurePolicy");
    expect(doc.spec).not.toHaveProperty("webhookTimeoutSeconds");
    expect(() => validate(doc)).not.toThrow();
  });

  it("writes only the policy-wide fields for a Kyverno older than 1.13 (chart < 3.3.0)", () => {
    const doc = clusterPolicy({ ...base, fieldStyle: "legacy", webhookTimeoutSeconds: 20 });
    const current = clusterPolicy(base);
    expect(doc.spec).toEqual({
      background: false,
      validationFailureAction: "Enforce",
      failurePolicy: "Fail",
      webhookTimeoutSeconds: 20,
      rules: [
        {
          ...(current.spec["rules"] as object[])[0],
          verifyImages: [
            {
              type: "Cosign",
              imageReferences: [`${HOST}/wb/*`, `${HOST}/wb-*/*`],
              attestors: [{ count: 1, entries: [KEY_ENTRY(PEM)] }],
              mutateDigest: true,
              verifyDigest: true,
              required: true,
            },
          ],
        },
      ],
    });
    expect(() => validate(doc)).not.toThrow();
  });

  it("checks the transparency log when signatures are uploaded there", () => {
    const doc = clusterPolicy({ ...base, tlogUpload: true });
    const rule = (doc.spec["rules"] as { verifyImages: { attestors: unknown[] }[] }[])[0]!;
    expect(rule.verifyImages[0]!.attestors).toEqual([
      { count: 1, entries: [{ keys: { publicKeys: PEM, rekor: { url: "https://rekor.sigstore.dev" }, ctlog: { ignoreSCT: true } } }] },
    ]);
    expect(() => validate(doc)).not.toThrow();
  });

  it("accepts a signature by either key while a rotation overlaps", () => {
    const doc = clusterPolicy({ ...base, additionalPublicKeysPem: [OLD_PEM] });
    const rule = (doc.spec["rules"] as { verifyImages: { attestors: unknown[] }[] }[])[0]!;
    expect(rule.verifyImages[0]!.attestors).toEqual([{ count: 1, entries: [KEY_ENTRY(PEM), KEY_ENTRY(OLD_PEM)] }]);
    expect(() => validate(doc)).not.toThrow();
  });

  it("is checked by a live schema validator (a wrong value fails)", () => {
    const doc = clusterPolicy({ ...base, fieldStyle: "legacy" });
    expect(() => validate({ ...doc, spec: { ...doc.spec, failurePolicy: "Sometimes" } })).toThrow(
      "data/spec/failurePolicy must be equal to one of the allowed values",
    );
  });

  it("refuses input that would make a policy that checks nothing, a key that is not PEM, or a timeout the API server refuses", () => {
    expect(() => clusterPolicy({ ...base, imageReferences: [], namespaces: [] })).toThrow(
      'Kyverno ClusterPolicy "workbench-images-signed": imageReferences is empty: the policy would check no image. namespaces is empty: the policy would check no pod.',
    );
    expect(() => clusterPolicy({ ...base, publicKeyPem: "MFkw", additionalPublicKeysPem: ["x"], webhookTimeoutSeconds: 31 })).toThrow(
      'Kyverno ClusterPolicy "workbench-images-signed": publicKeyPem is not a PEM public key ("-----BEGIN PUBLIC KEY-----" … "-----END PUBLIC KEY-----"). ' +
        'additionalPublicKeysPem[0] is not a PEM public key ("-----BEGIN PUBLIC KEY-----" … "-----END PUBLIC KEY-----"). ' +
        "webhookTimeoutSeconds must be a whole number from 1 to 30 (the API server's limit), got 31.",
    );
  });
});

describe("required attestations (admission.requireAttestations, issue #12)", () => {
  const base = {
    name: "workbench-images-signed",
    imageReferences: imageReferencePatterns(HOST, "wb"),
    publicKeyPem: PEM,
    namespaces: NAMESPACES,
    tlogUpload: false,
  };

  it("also requires a CycloneDX SBOM and a SLSA v1 provenance signed by the same keys", () => {
    const doc = clusterPolicy({ ...base, additionalPublicKeysPem: [OLD_PEM], requireAttestations: true });
    const attestors = [{ count: 1, entries: [KEY_ENTRY(PEM), KEY_ENTRY(OLD_PEM)] }];
    expect(doc.metadata).toEqual({
      name: "workbench-images-signed",
      annotations: {
        "policies.kyverno.io/title": "Workbench images are signed and attested",
        "policies.kyverno.io/description":
          "Pods in the workbench namespaces run images of this program's repositories only by a digest signed with the stack's cosign KMS key, " +
          "with a CycloneDX SBOM and a SLSA provenance attestation signed by the same key.",
      },
    });
    expect((doc.spec["rules"] as { verifyImages: unknown[] }[])[0]!.verifyImages).toEqual([
      {
        failureAction: "Enforce",
        type: "Cosign",
        imageReferences: [`${HOST}/wb/*`, `${HOST}/wb-*/*`],
        attestors,
        attestations: [
          { type: "https://cyclonedx.org/bom", attestors },
          { type: "https://slsa.dev/provenance/v1", attestors },
        ],
        mutateDigest: true,
        verifyDigest: true,
        required: true,
      },
    ]);
    expect(() => validate(doc)).not.toThrow();
  });

  it("leaves attestations out unless asked (the signature alone admits)", () => {
    for (const doc of [clusterPolicy(base), clusterPolicy({ ...base, requireAttestations: false })]) {
      expect((doc.spec["rules"] as { verifyImages: object[] }[])[0]!.verifyImages[0]).not.toHaveProperty("attestations");
      expect(doc.metadata).toEqual(METADATA);
    }
  });

  it("keeps the attestations in the legacy field style too (Kyverno < 1.13)", () => {
    const doc = clusterPolicy({ ...base, fieldStyle: "legacy", requireAttestations: true });
    const verify = (doc.spec["rules"] as { verifyImages: Record<string, unknown>[] }[])[0]!.verifyImages[0]!;
    expect((verify["attestations"] as { type: string }[]).map((a) => a.type)).toEqual(["https://cyclonedx.org/bom", "https://slsa.dev/provenance/v1"]);
    expect(verify).not.toHaveProperty("failureAction");
  });
});

// Upstream oracle: Kyverno 1.15.2's own ClusterPolicy CRD (chart 3.5.2), made strict the way the API server prunes:
// unknown fields are errors unless the schema preserves them.
const KYVERNO_CRD = path.resolve(PROJECT_ROOT, "..", "shared", "upstream", "kyverno-1.15.2", "kyverno.io_clusterpolicies.yaml");

function strictSchema(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(strictSchema);
  if (node === null || typeof node !== "object") return node;
  const obj = node as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) if (!k.startsWith("x-kubernetes-")) out[k] = strictSchema(v);
  if (obj["properties"] !== undefined && obj["additionalProperties"] === undefined && obj["x-kubernetes-preserve-unknown-fields"] !== true) {
    out["additionalProperties"] = false;
  }
  return out;
}

describe.skipIf(!fs.existsSync(KYVERNO_CRD))(`Kyverno 1.15.2's ClusterPolicy CRD (skipped without ${KYVERNO_CRD})`, () => {
  const validateCrd = () => {
    const crd = parseAllDocuments(fs.readFileSync(KYVERNO_CRD, "utf8")).map((d) => d.toJS()).find((d) => d?.kind === "CustomResourceDefinition");
    const version = (crd.spec.versions as { name: string; schema: { openAPIV3Schema: object } }[]).find((v) => v.name === "v1")!;
    return new Ajv({ strict: false, allErrors: true, validateFormats: false }).compile(strictSchema(version.schema.openAPIV3Schema) as object);
  };
  const validateStrict = validateCrd();
  const base = {
    name: "workbench-images-signed",
    imageReferences: imageReferencePatterns(HOST, "wb"),
    publicKeyPem: PEM,
    additionalPublicKeysPem: [OLD_PEM],
    namespaces: NAMESPACES,
    tlogUpload: false,
  };

  it("accepts the policy with and without required attestations, in both field styles", () => {
    for (const doc of [
      clusterPolicy(base),
      clusterPolicy({ ...base, requireAttestations: true }),
      clusterPolicy({ ...base, requireAttestations: true, tlogUpload: true, webhookTimeoutSeconds: 15 }),
      clusterPolicy({ ...base, requireAttestations: true, fieldStyle: "legacy" }),
    ]) {
      expect(validateStrict(doc), JSON.stringify(validateStrict.errors)).toBe(true);
    }
  });

  it("is strict: a misspelled attestation field is refused", () => {
    const doc = clusterPolicy({ ...base, requireAttestations: true });
    const rule = (doc.spec["rules"] as { verifyImages: Record<string, unknown>[] }[])[0]!;
    const bad = { ...doc, spec: { ...doc.spec, rules: [{ ...rule, verifyImages: [{ ...rule.verifyImages[0], attestations: [{ predicate: "x" }] }] }] } };
    expect(validateStrict(bad)).toBe(false);
    expect(validateStrict.errors?.map((e) => `${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`)).toContain(
      '/spec/rules/0/verifyImages/0/attestations/0 must NOT have additional properties {"additionalProperty":"predicate"}',
    );
  });
});

describe("Kyverno versions, registries and chart values", () => {
  it("picks the field style from the chart version (Kyverno 1.13 = chart 3.3.0)", () => {
    expect(kyvernoFieldStyle("3.5.2")).toBe("current");
    expect(kyvernoFieldStyle("v3.3.0")).toBe("current");
    expect(kyvernoFieldStyle("4.0.0-rc.1")).toBe("current");
    expect(kyvernoFieldStyle("3.2.9")).toBe("legacy");
    expect(kyvernoFieldStyle("2.7.5")).toBe("legacy");
    expect(kyvernoFieldStyle("latest")).toBeUndefined();
  });

  it("covers catalog repositories and per-user repositories (<prefix>-<uid>/<project>)", () => {
    expect(ecrRegistryHost("111122223333", "eu-west-1")).toBe(HOST);
    expect(ecrRegistryHost("111122223333", "cn-north-1")).toBe("111122223333.dkr.ecr.cn-north-1.amazonaws.com.cn");
    expect(imageReferencePatterns(HOST, "wb")).toEqual([`${HOST}/wb/*`, `${HOST}/wb-*/*`]);
  });

  it("annotates the admission controller's service account for IRSA only when a role is given", () => {
    expect(kyvernoChartValues({})).toEqual({});
    expect(kyvernoChartValues({ serviceAccountRoleArn: "arn:aws:iam::111122223333:role/kyverno-ecr" })).toEqual({
      admissionController: {
        rbac: { serviceAccount: { annotations: { "eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/kyverno-ecr" } } },
      },
    });
  });
});
