import * as fs from "node:fs";
import * as path from "node:path";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { requireDigestRef } from "../../lib/image-ref";
import { ignoreFileHash, TRIVY_PASSWORD_ENV, TRIVY_USERNAME_ENV, type TrivySeverity, trivyScanCommand, trivyScanFlags } from "./trivy";
import { credentialEnvironment, type RegistryCredentials } from "../../lib/registry";
import { after, asOutput } from "../../lib/outputs";

export interface ScanGateArgs {
  /** `repository@sha256:<64 hex>` (ImageVariant.imageRef); a tag is refused. */
  ref: pulumi.Input<string>;
  /** Absolute project root: the ignore file is read from here for its hash; never sent as an input. */
  projectRoot: string;
  /** The Trivy ignore file relative to the project root, the directory Pulumi runs commands in (scan.ignoreFile). */
  ignoreFile: string;
  /** Severities that fail the gate (scan.severities). @default ["CRITICAL", "HIGH"] */
  severities?: TrivySeverity[];
  /** Leave out findings with no fixed version (scan.ignoreUnfixed). @default false: HIGH and CRITICAL fail, fixed or not */
  ignoreUnfixed?: boolean;
  /** Pull credentials (ECR); the password must be a Pulumi secret. @default none: Trivy's own keychain (local registry) */
  credentials?: Pick<RegistryCredentials, "username" | "password">;
}

/**
 * The scan gate (issue #4): Trivy scans the pushed digest and a CRITICAL or HIGH finding, fixed or not (issue #12),
 * that the ignore file does not accept fails `pulumi up` here, before anything signs, validates or publishes the image. `scannedRef` is the same string as `ref`, but resolves
 * only after the scan passed, so whatever consumes it waits for (and depends on) the scan.
 */
export class ScanGate extends pulumi.ComponentResource {
  readonly scan: command.local.Command;
  /** `repository@sha256:…`, available once the scan passed. */
  readonly scannedRef: pulumi.Output<string>;

  constructor(name: string, args: ScanGateArgs, opts?: pulumi.ComponentResourceOptions) {
    super("workbench:scan:ScanGate", name, {}, opts);
    const error = (e: unknown) => new pulumi.ResourceError(`ScanGate "${name}": ${e instanceof Error ? e.message : String(e)}`, this);
    const check = (ref: string) => {
      try {
        return requireDigestRef(ref, "the scan gate scans");
      } catch (e) {
        throw error(e);
      }
    };
    // A plain string fails here, at registration; an Output fails when it resolves, before the command can run.
    if (typeof args.ref === "string") check(args.ref);
    const options = {
      ignoreFile: args.ignoreFile,
      ...(args.severities !== undefined ? { severities: args.severities } : {}),
      ...(args.ignoreUnfixed !== undefined ? { ignoreUnfixed: args.ignoreUnfixed } : {}),
    };
    try {
      trivyScanFlags(options); // plain options fail now, not once the digest is known
    } catch (e) {
      throw error(e);
    }
    let ignoreText: string;
    try {
      ignoreText = fs.readFileSync(path.resolve(args.projectRoot, args.ignoreFile), "utf8");
    } catch {
      throw error(
        `the Trivy ignore file ${args.ignoreFile} does not exist under ${args.projectRoot}. Create it (one that ignores nothing is "vulnerabilities: []") or point scan.ignoreFile at it.`,
      );
    }
    const ref = asOutput(args.ref);
    const create = ref.apply((r) => {
      check(r);
      return trivyScanCommand({ ref: r, ...options });
    });
    const digest = ref.apply((r) => check(r).digest);
    const environment = credentialEnvironment(args.credentials, TRIVY_USERNAME_ENV, TRIVY_PASSWORD_ENV);
    this.scan = new command.local.Command(
      `${name}-trivy`,
      {
        interpreter: ["/bin/sh", "-c"],
        create,
        // Replaced (so scanned again) when the digest, the ignore file or the command changes. Anything else, such as
        // the ECR token that is fresh on every run, only updates the resource, and an update runs this no-op instead
        // of `create`: otherwise every `pulumi up` would re-scan every image.
        update: "true",
        triggers: [digest, ignoreFileHash(ignoreText), create],
        ...(Object.keys(environment).length > 0 ? { environment } : {}),
      },
      { parent: this },
    );
    this.scannedRef = after(ref, this.scan.id);
    this.registerOutputs({ scannedRef: this.scannedRef });
  }
}
