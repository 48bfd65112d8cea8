import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { requireDigestRef } from "../../lib/image-ref";
import { credentialEnvironment, isLoopbackRepository, type RegistryCredentials } from "../../lib/registry";
import { after, asOutput } from "../../lib/outputs";
import { SIZE_PASSWORD_ENV, SIZE_USERNAME_ENV, sizeCheckScript } from "./image-size";

export interface SizeGateArgs {
  /** The image's id, for messages. */
  id: string;
  /** `repository@sha256:<64 hex>`, pushed (the gated ref, so the check runs after the gates). */
  ref: pulumi.Input<string>;
  /** The catalog's sizeBudgetMB: compressed MB a node pulls per platform (image-size.ts). */
  budgetMB: number;
  /** Pull credentials (ECR); the password must be a Pulumi secret. @default none: skopeo's own login (local registry) */
  credentials?: Pick<RegistryCredentials, "username" | "password">;
}

/**
 * The size gate (issue #14): reads the pushed digest's manifests from the registry with `skopeo inspect --raw` and
 * fails `pulumi up` when any platform pulls more than the budget, naming the platform, the measured MB and the
 * budget. `sizedRef` is `ref`, resolved only after the check passed.
 */
export class SizeGate extends pulumi.ComponentResource {
  readonly check: command.local.Command;
  /** `repository@sha256:…`, available once every platform fits the budget. */
  readonly sizedRef: pulumi.Output<string>;
  /** One line per platform: `<id> <platform>: <MB> MB (compressed config + <n> layers), budget <B> MB`. */
  readonly report: pulumi.Output<string>;

  constructor(name: string, args: SizeGateArgs, opts?: pulumi.ComponentResourceOptions) {
    super("workbench:validation:SizeGate", name, {}, opts);
    const error = (e: unknown) => new pulumi.ResourceError(`SizeGate "${name}": ${e instanceof Error ? e.message : String(e)}`, this);
    const script = (ref: string) => {
      try {
        requireDigestRef(ref, "the size gate measures");
        return sizeCheckScript({
          id: args.id,
          ref,
          budgetMB: args.budgetMB,
          ...(isLoopbackRepository(ref) ? { tlsVerify: false } : {}),
          ...(args.credentials !== undefined ? { credentials: true } : {}),
        });
      } catch (e) {
        throw error(e);
      }
    };
    // Plain values fail now, at registration; an Output when it resolves, before the command can run.
    if (typeof args.ref === "string") script(args.ref);
    else if (!Number.isInteger(args.budgetMB) || args.budgetMB <= 0) script(`x@sha256:${"0".repeat(64)}`);
    const ref = asOutput(args.ref);
    const create = ref.apply(script);
    const environment = credentialEnvironment(args.credentials, SIZE_USERNAME_ENV, SIZE_PASSWORD_ENV);
    this.check = new command.local.Command(
      `${name}-skopeo`,
      {
        // `node -e SCRIPT`: the command provider appends `create` to the interpreter's argv.
        interpreter: ["node", "-e"],
        create,
        // As the scan gate: replaced (measured again) when the digest or the budget (both in the script) change;
        // a fresh ECR token only updates the resource, and an update runs this no-op.
        update: "process.exit(0)",
        triggers: [create],
        ...(Object.keys(environment).length > 0 ? { environment } : {}),
      },
      { parent: this },
    );
    this.report = this.check.stdout;
    this.sizedRef = after(ref, this.check.stdout);
    this.registerOutputs({ sizedRef: this.sizedRef, report: this.report });
  }
}
