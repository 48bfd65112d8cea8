import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { digestHex, requireDigestRef } from "../../lib/image-ref";
import { credentialEnvironment, type RegistryCredentials } from "../../lib/registry";
import { after, asOutput, combine } from "../../lib/outputs";
import { shellQuote } from "../../lib/shell";
import { cosignAttestCommand, REGISTRY_PASSWORD_ENV, REGISTRY_USERNAME_ENV } from "./cosign";
import { kmsRegionOf } from "./kms-region";
import { TRIVY_PASSWORD_ENV, TRIVY_USERNAME_ENV, trivySbomCommand } from "./trivy";

/** The variable the provenance command reads the predicate from: its text stays out of the command line. */
export const PROVENANCE_ENV = "WORKBENCH_PROVENANCE";

export interface AttestationsArgs {
  /** `repository@sha256:<64 hex>`: the SigningPolicy's signedRef, so attesting waits for the signature. A tag is refused. */
  ref: pulumi.Input<string>;
  /**
   * Folder for this image's SBOM and provenance files, relative to the project root (the directory Pulumi runs
   * commands in). Files are named after the digest: `sha256-<hex>.cdx.json`, `sha256-<hex>.provenance.json`.
   */
  outputDir: string;
  /** The SLSA v1 provenance predicate's JSON text (provenance.ts provenanceJson); never a secret (gate-image.ts). */
  provenance: pulumi.Input<string>;
  /**
   * Attach both files to the digest as attestations signed with this key. @default none: the files are written and
   * kept, and nothing is attested (a stack without a signing key: local)
   */
  signing?: { keyRef: pulumi.Input<string>; tlogUpload: boolean; cosignVersion?: string };
  /** Registry credentials for trivy (pull) and cosign (push); the password must be a Pulumi secret. @default their own keychains */
  credentials?: Pick<RegistryCredentials, "username" | "password">;
}

/**
 * The SBOM and provenance of one digest (issue #12 point 7). Two commands, one per attestation type, the second
 * waiting for the first: cosign rewrites the digest's one `.att` tag on each attest, and two at once would lose one.
 *
 * - `<name>-sbom`: `trivy image --format cyclonedx` writes the SBOM of the registry's copy of the digest, then
 *   `cosign attest --type cyclonedx` attaches it. One command, because a file written by an earlier `pulumi up` is
 *   gone on a fresh CI runner.
 * - `<name>-provenance`: writes the predicate from $WORKBENCH_PROVENANCE, then `cosign attest --type slsaprovenance1`.
 *
 * Without `signing` the same commands only write the files. `attestedRef` is `ref`, resolved once both commands
 * succeeded: whatever validates or publishes the image waits for its attestations.
 */
export class Attestations extends pulumi.ComponentResource {
  readonly sbom: command.local.Command;
  readonly provenance: command.local.Command;
  /** `repository@sha256:…`, available once the SBOM and provenance are written (and attested, with signing). */
  readonly attestedRef: pulumi.Output<string>;
  /** The CycloneDX SBOM file, relative to the project root. */
  readonly sbomFile: pulumi.Output<string>;
  /** The provenance predicate file, relative to the project root. */
  readonly provenanceFile: pulumi.Output<string>;
  /** Whether the files are attached as signed attestations (plain: decided by `signing`). */
  readonly signed: boolean;

  constructor(name: string, args: AttestationsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("workbench:attest:Attestations", name, {}, opts);
    const { error, check, dir, ref, digest } = attestationTarget("Attestations", name, this, args.ref, args.outputDir);
    const fileOf = (d: string, suffix: string) => `${dir}/sha256-${digestHex(d)}.${suffix}`;
    this.sbomFile = digest.apply((d) => fileOf(d, "cdx.json"));
    this.provenanceFile = digest.apply((d) => fileOf(d, "provenance.json"));
    this.signed = args.signing !== undefined;
    const signing = args.signing;
    const keyRef: pulumi.Input<string | undefined> = signing ? asOutput(signing.keyRef) : undefined;
    const attest = (r: string, k: string | undefined, type: "cyclonedx" | "slsaprovenance1", predicate: string): string[] => {
      if (signing === undefined || k === undefined) return [];
      try {
        return [
          cosignAttestCommand({
            ref: r,
            keyRef: k,
            type,
            predicate,
            tlogUpload: signing.tlogUpload,
            registryAuth: args.credentials !== undefined,
            ...(signing.cosignVersion !== undefined ? { cosignVersion: signing.cosignVersion } : {}),
          }),
        ];
      } catch (e) {
        throw error(e);
      }
    };
    const mkdir = `mkdir -p ${shellQuote(dir)}`;
    // The file names from the ref itself, not by applying on sbomFile/provenanceFile inside: one Output per command
    // instead of three (issue #16), with the same dependencies (those Outputs derive from the ref too).
    const sbomCreate = combine(ref, keyRef, (r, k) => {
      const f = fileOf(check(r).digest, "cdx.json");
      let sbom: string;
      try {
        sbom = trivySbomCommand({ ref: r, output: f });
      } catch (e) {
        throw error(e);
      }
      return [mkdir, sbom, ...attest(r, k, "cyclonedx", f)].join(" && ");
    });
    const provenanceCreate = combine(ref, keyRef, (r, k) => {
      const f = fileOf(check(r).digest, "provenance.json");
      return [mkdir, `printf '%s' "$${PROVENANCE_ENV}" > ${shellQuote(f)}`, ...attest(r, k, "slsaprovenance1", f)].join(" && ");
    });

    const common: Record<string, pulumi.Input<string>> = {};
    if (signing !== undefined) {
      // sigstore's AWS KMS client takes the region from the SDK configuration, never from the key ARN (signing-policy.ts).
      common["AWS_REGION"] = kmsRegionOf(signing.keyRef);
      Object.assign(common, credentialEnvironment(args.credentials, REGISTRY_USERNAME_ENV, REGISTRY_PASSWORD_ENV));
    }
    const sbomEnvironment = { ...common, ...credentialEnvironment(args.credentials, TRIVY_USERNAME_ENV, TRIVY_PASSWORD_ENV) };
    this.sbom = new command.local.Command(
      `${name}-sbom`,
      {
        interpreter: ["/bin/sh", "-c"],
        create: sbomCreate,
        // As the scan and the signature: replaced (so generated and attested again) for a new digest or command; the
        // fresh ECR token in the environment is only an update, which runs this no-op.
        update: "true",
        triggers: [digest, sbomCreate],
        ...(Object.keys(sbomEnvironment).length > 0 ? { environment: sbomEnvironment } : {}),
      },
      { parent: this },
    );
    this.provenance = new command.local.Command(
      `${name}-provenance`,
      {
        interpreter: ["/bin/sh", "-c"],
        create: provenanceCreate,
        update: "true",
        // The predicate is a trigger too: a changed fact (a new program version, a new revision) re-attests.
        triggers: [digest, provenanceCreate, args.provenance],
        environment: { ...common, [PROVENANCE_ENV]: args.provenance },
      },
      { parent: this, dependsOn: [this.sbom] },
    );
    this.attestedRef = after(after(ref, this.sbom.id), this.provenance.id);
    this.registerOutputs({ attestedRef: this.attestedRef, sbomFile: this.sbomFile, provenanceFile: this.provenanceFile });
  }
}

/**
 * What every attestation component starts from: errors naming the component, the output folder checked to be a
 * relative folder inside the project, and the image's ref and digest, a tag refused (at registration when the ref is
 * a plain string, else when it resolves).
 */
export function attestationTarget(kind: string, name: string, owner: pulumi.Resource, input: pulumi.Input<string>, outputDir: string) {
  const error = (e: unknown) => new pulumi.ResourceError(`${kind} "${name}": ${e instanceof Error ? e.message : String(e)}`, owner);
  const check = (ref: string) => {
    try {
      return requireDigestRef(ref, "cosign attests");
    } catch (e) {
      throw error(e);
    }
  };
  if (typeof input === "string") check(input);
  const dir = outputDir.replace(/\/+$/, "");
  if (dir === "" || dir.startsWith("/") || dir.split("/").includes("..")) {
    throw error(`args.outputDir must be a folder relative to the project root, inside it, got ${JSON.stringify(outputDir)}.`);
  }
  const ref = asOutput(input);
  return { error, check, dir, ref, digest: ref.apply((r) => check(r).digest) };
}
