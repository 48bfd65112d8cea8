import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { requireDigestRef } from "../../lib/image-ref";
import { cosignSignCommand, REGISTRY_PASSWORD_ENV, REGISTRY_USERNAME_ENV } from "./cosign";
import { kmsRegionOf } from "./kms-region";
import { credentialEnvironment, type RegistryCredentials } from "../../lib/registry";
import { after, asOutput, combine } from "../../lib/outputs";

export interface SigningPolicyArgs {
  /** `repository@sha256:<64 hex>`: the ScanGate's scannedRef, so signing waits for the scan. A tag is refused. */
  ref: pulumi.Input<string>;
  /** `awskms:///<key ARN>` (SigningKey.cosignKeyRef). */
  keyRef: pulumi.Input<string>;
  /** Upload the signature to the public Rekor log (signing.tlogUpload). */
  tlogUpload: boolean;
  /** Signed annotations (`-a key=value`), e.g. the variant and stack. @default none */
  annotations?: Record<string, string>;
  /**
   * Push credentials for the signature (ECR); the password must be a Pulumi secret.
   * @default none: cosign's default keychain (docker config)
   */
  credentials?: Pick<RegistryCredentials, "username" | "password">;
  /** signing.cosignVersion: the sign command refuses any other cosign. @default no check */
  cosignVersion?: string;
}

/**
 * Signs one pushed digest with cosign and the stack's KMS key (issue #4). The signature lands in the image's own
 * repository under `sha256-<hex>.sig`, a tag the ECR repositories exempt from immutability (components/registry/ecr.ts) so that a
 * second signature of the same digest (a re-run, a key rotation) can be pushed. `signedRef` is the same string as
 * `ref`, resolved only after signing succeeded.
 */
export class SigningPolicy extends pulumi.ComponentResource {
  readonly sign: command.local.Command;
  /** `repository@sha256:…`, available once the digest is signed. */
  readonly signedRef: pulumi.Output<string>;

  constructor(name: string, args: SigningPolicyArgs, opts?: pulumi.ComponentResourceOptions) {
    super("workbench:signing:SigningPolicy", name, {}, opts);
    const error = (e: unknown) => new pulumi.ResourceError(`SigningPolicy "${name}": ${e instanceof Error ? e.message : String(e)}`, this);
    const check = (ref: string) => {
      try {
        return requireDigestRef(ref, "cosign signs");
      } catch (e) {
        throw error(e);
      }
    };
    // A plain string fails here, at registration; an Output fails when it resolves, before the command can run.
    if (typeof args.ref === "string") check(args.ref);
    const ref = asOutput(args.ref);
    const keyRef = asOutput(args.keyRef);
    const create = combine(ref, keyRef, (r, k) => {
      check(r);
      try {
        return cosignSignCommand({
          ref: r,
          keyRef: k,
          tlogUpload: args.tlogUpload,
          ...(args.annotations !== undefined ? { annotations: args.annotations } : {}),
          registryAuth: args.credentials !== undefined,
          ...(args.cosignVersion !== undefined ? { cosignVersion: args.cosignVersion } : {}),
        });
      } catch (e) {
        throw error(e);
      }
    });
    const digest = ref.apply((r) => check(r).digest);
    const environment: Record<string, pulumi.Input<string>> = {
      // sigstore's AWS KMS client takes the region from the SDK's configuration, never from the key ARN, so the
      // caller's default region (or none) would send the request to the wrong KMS endpoint.
      AWS_REGION: kmsRegionOf(keyRef),
      ...credentialEnvironment(args.credentials, REGISTRY_USERNAME_ENV, REGISTRY_PASSWORD_ENV),
    };
    this.sign = new command.local.Command(
      `${name}-cosign`,
      {
        interpreter: ["/bin/sh", "-c"],
        create,
        // Replaced (so signed again) when the digest changes, or the command does (a new key, tlog, annotations).
        // The ECR token in the environment is fresh on every run: that is only an update, which runs this no-op
        // instead of `create`, so an unchanged digest is not signed again on every `pulumi up`.
        update: "true",
        triggers: [digest, create],
        environment,
      },
      { parent: this },
    );
    this.signedRef = after(ref, this.sign.id);
    this.registerOutputs({ signedRef: this.signedRef });
  }
}
