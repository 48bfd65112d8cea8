import * as pulumi from "@pulumi/pulumi";
import { isDigestPinned } from "../../lib/image-ref";
import type { RegistryCredentials } from "../../lib/registry";
import { after } from "../../lib/outputs";
import { Attestations } from "./attestations";
import { type ImageOrigin, type ProvenanceBuilder, provenanceJson, provenancePredicate } from "./provenance";
import { ScanGate } from "./scan-gate";
import { SigningPolicy } from "./signing-policy";
import type { TrivySeverity } from "./trivy";

/** An image in this stack's registry, by digest: what the build and promotion modules hand to the gates. */
export interface StoredImage {
  /** `repository@sha256:…` once pushed (or copied). */
  imageRef: pulumi.Output<string>;
  repositoryUrl: pulumi.Output<string>;
  /** The registry tag that holds the digest. */
  tag: pulumi.Input<string>;
  digest: pulumi.Input<string>;
}

/** The stack's supply-chain settings; a gate that is not configured is not run (local stack only). */
export interface GateSettings {
  /**
   * Trivy scan gate (scan.*). `ignoreUnfixed` (scan.ignoreUnfixed) lets findings without a fixed version pass.
   * @default no scan; ignoreUnfixed false: HIGH and CRITICAL fail, fixed or not
   */
  scan?: { projectRoot: string; ignoreFile: string; severities: TrivySeverity[]; ignoreUnfixed?: boolean };
  /** cosign signature with the stack's KMS key. @default no signature */
  signing?: { keyRef: pulumi.Input<string>; tlogUpload: boolean; cosignVersion?: string };
  /**
   * SBOM (CycloneDX, by Trivy) and SLSA v1 provenance of every image (issue #12 point 7), written under
   * `<outputDir>/<id>/` and, with `signing`, attached to the digest as attestations signed by the same key.
   * @default neither generated
   */
  attestations?: {
    /** Folder relative to the project root, e.g. `.attestations/<stack>`; one sub-folder per image. */
    outputDir: string;
    /** This program as the provenance's builder (provenance.ts readProgramBuilder). */
    builder: ProvenanceBuilder;
  };
  /** Registry credentials for trivy and cosign (ECR). @default their own keychains */
  credentials?: RegistryCredentials;
  /**
   * Resolves once the cluster's admission policy exists: a gated ref reaches Kubernetes only after the policy that
   * checks it. @default no admission policy (local stack)
   */
  admitted?: pulumi.Input<unknown>;
}

/**
 * An image that passed its gates (issue #10): `imageRef` resolves only after its scan, signature and attestations
 * passed (and the admission policy exists), and `evidence` says which gates ran: a true flag resolves with `imageRef`,
 * only once every gate's command succeeded, so it is never true for a gate that did not pass.
 */
export interface GatedImage {
  id: string;
  stored: StoredImage;
  imageRef: pulumi.Output<string>;
  /** `attested`: the SBOM and provenance are attached to the digest, signed (false when only written to files). */
  evidence: { scanned: pulumi.Output<boolean>; signed: pulumi.Output<boolean>; attested: pulumi.Output<boolean> };
  /** The SBOM and provenance files (relative to the project root), when `settings.attestations` is set. */
  files?: { sbom: pulumi.Output<string>; provenance: pulumi.Output<string> };
}

/**
 * The provenance predicate's text for one stored image. Every fact is a plain string or an Output; an Output marked
 * secret is refused, so no secret can be written into a statement that is pushed next to the image.
 */
export function provenanceText(id: string, stored: StoredImage, origin: ImageOrigin<pulumi.Input<string>>, builder: ProvenanceBuilder): pulumi.Output<string> {
  const fail = (message: string) => new Error(`gateImage "${id}": ${message}`);
  const baseArgs = origin.kind === "build" ? Object.keys(origin.bases).sort() : [];
  if (origin.kind === "build") {
    // Plain facts fail now, at registration; Outputs when they resolve, before any command runs.
    for (const arg of baseArgs) {
      const base = origin.bases[arg];
      if (typeof base === "string" && !isDigestPinned(base)) {
        throw fail(`origin.bases.${arg} must be an image reference pinned by digest (repository[:tag]@sha256:<64 hex>), got ${JSON.stringify(base)}.`);
      }
    }
  }
  // One pulumi.all over the facts themselves (base references flattened in), and its secretness checked with the
  // value: fewer Outputs per image than combining an all of the bases with the text and its secretness (issue #16).
  const facts = pulumi.all([stored.tag, stored.digest, ...(origin.kind === "build" ? baseArgs.map((arg) => origin.bases[arg]!) : [])]);
  return pulumi.all([facts, pulumi.isSecret(facts)]).apply(([[tag, digest, ...bases], secret]) => {
    if (secret) {
      throw fail(
        "a provenance fact (the tag, the digest or a base image reference) is a Pulumi secret. Provenance is pushed next to the image " +
          "for anyone who can pull it to read: pass those facts in plain text, or leave the secret out.",
      );
    }
    const resolved: ImageOrigin =
      origin.kind === "build" ? { ...origin, bases: Object.fromEntries(baseArgs.map((arg, i) => [arg, bases[i]!])) } : origin;
    try {
      return provenanceJson(provenancePredicate({ builder, tag: tag!, digest: digest!, origin: resolved }));
    } catch (e) {
      throw fail(e instanceof Error ? e.message : String(e));
    }
  });
}

/**
 * Runs an image through the supply-chain gates in order: scan, sign the scanned digest, then attest its SBOM and
 * provenance to the signed digest (issue #12). The gate resources keep their names (`<id>-scan`, `<id>-sign`,
 * `<id>-attest`) and stay top-level, as before this function existed, so no URN changed.
 */
export function gateImage(id: string, stored: StoredImage, settings: GateSettings, origin: ImageOrigin<pulumi.Input<string>>): GatedImage {
  let ref: pulumi.Output<string> = stored.imageRef;
  let scanned = false;
  let signed = false;
  let attested = false;
  let files: GatedImage["files"];
  const credentials = settings.credentials ? { credentials: settings.credentials } : {};
  if (settings.scan) {
    const gate = new ScanGate(`${id}-scan`, { ref, ...settings.scan, ...credentials });
    ref = gate.scannedRef;
    scanned = true;
  }
  if (settings.signing) {
    const { keyRef, tlogUpload, cosignVersion } = settings.signing;
    const sign = new SigningPolicy(`${id}-sign`, { ref, keyRef, tlogUpload, ...(cosignVersion !== undefined ? { cosignVersion } : {}), ...credentials });
    ref = sign.signedRef;
    signed = true;
  }
  if (settings.attestations) {
    const attest = new Attestations(`${id}-attest`, {
      ref,
      outputDir: `${settings.attestations.outputDir.replace(/\/+$/, "")}/${id}`,
      provenance: provenanceText(id, stored, origin, settings.attestations.builder),
      ...(settings.signing ? { signing: settings.signing } : {}),
      ...credentials,
    });
    ref = attest.attestedRef;
    attested = attest.signed;
    files = { sbom: attest.sbomFile, provenance: attest.provenanceFile };
  }
  if (settings.admitted !== undefined) ref = after(ref, settings.admitted);
  // Each flag says whether its gate ran and passed. A true flag resolves with the gated ref, i.e. only once every
  // gate's command succeeded, so it is never true for a gate that failed; flags of equal value share one Output
  // (issue #16: one apply per image instead of one per gate).
  const passed = scanned || signed || attested ? ref.apply(() => true) : undefined;
  let no: pulumi.Output<boolean> | undefined;
  const flag = (ran: boolean) => (ran ? passed! : (no ??= pulumi.output(false)));
  return { id, stored, imageRef: ref, evidence: { scanned: flag(scanned), signed: flag(signed), attested: flag(attested) }, ...(files ? { files } : {}) };
}
