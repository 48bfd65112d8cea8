import * as crypto from "node:crypto";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { digestHex, requireDigestRef } from "../../lib/image-ref";
import { credentialEnvironment, type RegistryCredentials } from "../../lib/registry";
import { shellQuote } from "../../lib/shell";
import { attestationTarget } from "../supply-chain/attestations";
import { cosignAttestCommand, kmsRegionFromKeyRef, REGISTRY_PASSWORD_ENV, REGISTRY_USERNAME_ENV } from "../supply-chain/cosign";
import { kmsRegionOf } from "../supply-chain/kms-region";
import { GPU_VALIDATION_PREDICATE_TYPE, type PoolReport, validationPredicate } from "./validation-report";

export interface ReportAttestCommandOptions {
  /** `repository@sha256:<64 hex>`; a tag is refused. */
  ref: string;
  /** `awskms:///arn:aws:kms:<region>:<account>:key/<id>` (SigningKey.cosignKeyRef). */
  keyRef: string;
  /** The predicate file, relative to the directory the command runs in. */
  predicate: string;
  /** Upload to the public Rekor log (signing.tlogUpload), as the signature. */
  tlogUpload: boolean;
  /** Pass $REGISTRY_USERNAME/$REGISTRY_PASSWORD. @default true (ECR); false uses cosign's own keychain */
  registryAuth?: boolean;
  /** Refuse to run unless cosign is exactly this version (signing.cosignVersion). @default no check */
  cosignVersion?: string;
}

/**
 * `cosign attest` of the GPU validation predicate to one digest, with the stack's KMS key: cosignAttestCommand with
 * our predicate type URI. `--replace` keeps one validation attestation per digest: a re-validation replaces the last
 * one instead of piling up.
 */
export function reportAttestCommand(options: ReportAttestCommandOptions): string {
  requireDigestRef(options.ref, "cosign attests");
  // The ARN form only: sigstore's AWS client needs AWS_REGION, which ReportAttestation takes from the ARN.
  if (kmsRegionFromKeyRef(options.keyRef) === undefined) {
    throw new Error(
      `args.signing.keyRef must be a KMS key ARN reference (awskms:///arn:aws:kms:<region>:<account>:key/<id>), got ${JSON.stringify(options.keyRef)}. ` +
        "Pass the SigningKey's cosignKeyRef.",
    );
  }
  return cosignAttestCommand({ ...options, type: { uri: GPU_VALIDATION_PREDICATE_TYPE } });
}

/** `cosign verify-attestation` of the GPU validation attestation, for users, auditors and runbooks. */
export function reportVerifyCommand(ref: string, key: string, tlogUpload: boolean): string {
  requireDigestRef(ref, "cosign verifies");
  return [
    "cosign",
    "verify-attestation",
    "--key",
    shellQuote(key),
    "--type",
    shellQuote(GPU_VALIDATION_PREDICATE_TYPE),
    ...(tlogUpload ? [] : ["--insecure-ignore-tlog=true"]),
    ref,
  ].join(" ");
}

export interface ReportAttestationArgs {
  /** `repository@sha256:…` of the validated image (the gate's ref). */
  ref: pulumi.Input<string>;
  /** The catalog variant or per-user image id: named in the predicate. */
  image: string;
  /** Hash of the check files that ran (GpuValidationSuite.checksHash). */
  checksHash: string;
  /** Every pool's report as read back from its Job's ConfigMap (GpuValidation.reportText). */
  reports: Array<{ pool: string; job: pulumi.Input<string>; namespace: pulumi.Input<string>; report: pulumi.Input<string> }>;
  /** Folder for the predicate file, relative to the project root: `sha256-<hex>.gpu-validation.json` there. */
  outputDir: string;
  /**
   * Attach the predicate to the digest, signed with this key. @default none: the file is written and kept, nothing
   * is attested (a stack without a signing key: local)
   */
  signing?: { keyRef: pulumi.Input<string>; tlogUpload: boolean; cosignVersion?: string };
  /** Registry credentials for cosign (push); the password must be a Pulumi secret. @default cosign's own keychain */
  credentials?: Pick<RegistryCredentials, "username" | "password">;
}

/**
 * The GPU validation reports of one digest, attached to it as one signed in-toto attestation (issue #15). One
 * command: it writes the predicate from its stdin (the reports are tens of KB: kept out of the command line and the
 * environment) and attests it. It runs once the reports were read back, i.e. after every Job of the image succeeded,
 * and again whenever a report changes (a Job re-ran). A report that is missing or not JSON fails the command, with
 * the pools named: an image must not be published with evidence that silently lacks a pool.
 */
export class ReportAttestation extends pulumi.ComponentResource {
  readonly command: command.local.Command;
  /** The predicate file, relative to the project root. */
  readonly predicateFile: pulumi.Output<string>;
  /** `ref`, resolved once the predicate was written (and attested, with signing). */
  readonly attestedRef: pulumi.Output<string>;
  readonly signed: boolean;

  constructor(name: string, args: ReportAttestationArgs, opts?: pulumi.ComponentResourceOptions) {
    super("workbench:validation:ReportAttestation", name, {}, opts);
    const { error, check, dir, ref, digest } = attestationTarget("ReportAttestation", name, this, args.ref, args.outputDir);
    if (args.reports.length === 0) throw error("args.reports is empty: attest only an image that some Job validated.");
    this.predicateFile = digest.apply((d) => `${dir}/sha256-${digestHex(d)}.gpu-validation.json`);
    this.signed = args.signing !== undefined;
    const signing = args.signing;

    const reports = pulumi.all(
      args.reports.map((r) => pulumi.all([r.job, r.namespace, r.report]).apply(([job, namespace, report]): PoolReport => ({ pool: r.pool, job, namespace, report: report ?? "" }))),
    );
    const built = reports.apply((rs) => validationPredicate(args.image, args.checksHash, rs));
    const predicateText = built.apply((b) => b.text);
    const keyRef: pulumi.Output<string | undefined> = signing ? pulumi.output(signing.keyRef) : pulumi.output(undefined as string | undefined);
    const create = pulumi.all([ref, keyRef, this.predicateFile, built]).apply(([r, k, f, b]) => {
      check(r);
      if (b.missing.length > 0) {
        // Known only once the reports are read back (never under mocks or in a preview of new Jobs): fail when run.
        const what = `GPU validation report missing or not JSON for pool(s) ${b.missing.join(", ")} of ${args.image}`;
        return `echo ${shellQuote(`${what}: its Job passed, but its report ConfigMap (wbr-…, in the validation namespace) holds no report.json. Run the check again: pulumi up --replace <URN of its Job>.`)} >&2; exit 1`;
      }
      const steps = [`mkdir -p ${shellQuote(dir)}`, `cat > ${shellQuote(f)}`];
      if (signing !== undefined && k !== undefined) {
        try {
          steps.push(
            reportAttestCommand({
              ref: r,
              keyRef: k,
              predicate: f,
              tlogUpload: signing.tlogUpload,
              registryAuth: args.credentials !== undefined,
              ...(signing.cosignVersion !== undefined ? { cosignVersion: signing.cosignVersion } : {}),
            }),
          );
        } catch (e) {
          throw error(e);
        }
      }
      return steps.join(" && ");
    });

    const environment: Record<string, pulumi.Input<string>> = {};
    if (signing !== undefined) {
      // sigstore's AWS KMS client takes the region from the SDK configuration, never from the key ARN.
      environment["AWS_REGION"] = kmsRegionOf(signing.keyRef);
      Object.assign(environment, credentialEnvironment(args.credentials, REGISTRY_USERNAME_ENV, REGISTRY_PASSWORD_ENV));
    }
    this.command = new command.local.Command(
      `${name}-attest`,
      {
        interpreter: ["/bin/sh", "-c"],
        create,
        stdin: predicateText,
        // As the other attestations: replaced (so written and attested again) for a new digest, command or report;
        // a fresh ECR token in the environment is only an update, which runs this no-op.
        update: "true",
        triggers: [digest, create, predicateText.apply((t) => crypto.createHash("sha256").update(t, "utf8").digest("hex"))],
        ...(Object.keys(environment).length > 0 ? { environment } : {}),
      },
      { parent: this },
    );
    this.attestedRef = pulumi.all([ref, this.command.id]).apply(([r]) => r);
    this.registerOutputs({ attestedRef: this.attestedRef, predicateFile: this.predicateFile });
  }
}
