import { ClusterPolicy } from "@kubernetes-models/kyverno/kyverno.io/v1/ClusterPolicy";
import { describe, expect, it } from "vitest";
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
