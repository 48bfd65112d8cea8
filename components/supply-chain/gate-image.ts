import * as pulumi from "@pulumi/pulumi";
import type { RegistryCredentials } from "../../lib/registry";
import { ScanGate } from "./scan-gate";
import { SigningPolicy } from "./signing-policy";

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
  /** Trivy scan gate (scan.*). @default no scan */
  scan?: { projectRoot: string; ignoreFile: string; severities: ("CRITICAL" | "HIGH" | "MEDIUM" | "LOW" | "UNKNOWN")[] };
  /** cosign signature with the stack's KMS key. @default no signature */
  signing?: { keyRef: pulumi.Input<string>; tlogUpload: boolean };
  /** Registry credentials for trivy and cosign (ECR). @default their own keychains */
  credentials?: RegistryCredentials;
  /**
   * Resolves once the cluster's admission policy exists: a gated ref reaches Kubernetes only after the policy that
   * checks it. @default no admission policy (local stack)
   */
  admitted?: pulumi.Input<unknown>;
}

/**
 * An image that passed its gates (issue #10): `imageRef` resolves only after its scan and signature passed (and the
 * admission policy exists), and `evidence` says which gates ran, taken from the gates themselves: a flag is true
 * only once that gate's command succeeded, never copied from configuration.
 */
export interface GatedImage {
  id: string;
  stored: StoredImage;
  imageRef: pulumi.Output<string>;
  evidence: { scanned: pulumi.Output<boolean>; signed: pulumi.Output<boolean> };
}

/**
 * Runs an image through the supply-chain gates in order: scan, then sign the scanned digest. The gate resources keep
 * their names (`<id>-scan`, `<id>-sign`) and stay top-level, as before this function existed, so no URN changed.
 */
export function gateImage(id: string, stored: StoredImage, settings: GateSettings): GatedImage {
  let ref: pulumi.Output<string> = stored.imageRef;
  let scanned = pulumi.output(false);
  let signed = pulumi.output(false);
  const credentials = settings.credentials ? { credentials: settings.credentials } : {};
  if (settings.scan) {
    const gate = new ScanGate(`${id}-scan`, { ref, ...settings.scan, ...credentials });
    ref = gate.scannedRef;
    scanned = gate.scannedRef.apply(() => true);
  }
  if (settings.signing) {
    const sign = new SigningPolicy(`${id}-sign`, { ref, keyRef: settings.signing.keyRef, tlogUpload: settings.signing.tlogUpload, ...credentials });
    ref = sign.signedRef;
    signed = sign.signedRef.apply(() => true);
  }
  if (settings.admitted !== undefined) ref = pulumi.all([ref, settings.admitted]).apply(([r]) => r);
  return { id, stored, imageRef: ref, evidence: { scanned, signed } };
}
