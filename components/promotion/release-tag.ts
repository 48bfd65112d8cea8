import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { parseImageRef } from "../../lib/image-ref";
import { isLoopbackRepository } from "../../lib/registry";
import { copyImageScript, releaseTag } from "./copy";
import type { RegistryCredentials } from "../../lib/registry";

export interface ReleaseTagArgs {
  /** The published image, `repository@sha256:…` (already scanned, signed and validated). */
  imageRef: pulumi.Input<string>;
  /** Registry credentials (ECR); the password must be a Pulumi secret. */
  credentials?: RegistryCredentials;
  /** What must succeed before the tag is written (the hub release: a release tag means "offered to users"). */
  after: pulumi.Resource[];
}

const CREDS_ENV = "RELEASE_REGISTRY_CREDS";

/**
 * Tags a digest that JupyterHub offers as `release-<12 hex>` in its own repository. The ECR lifecycle policy never
 * expires release-* tags (components/registry/ecr.ts), so an image users run is never deleted by the build-retention rule however many
 * builds follow. Tagging is a copy within one repository: no blob moves, the digest is preserved, and the script skips
 * the push when the tag already holds the digest (immutable tags refuse a second push).
 */
export class ReleaseTag extends pulumi.ComponentResource {
  readonly tag: pulumi.Output<string>;
  readonly tagged: command.local.Command;

  constructor(name: string, args: ReleaseTagArgs, opts?: pulumi.ComponentResourceOptions) {
    super("workbench:registry:ReleaseTag", name, {}, opts);
    const plan = pulumi.output(args.imageRef).apply((ref) => {
      const parsed = parseImageRef(ref);
      if (parsed?.digest === undefined) throw new pulumi.ResourceError(`${name}: "${ref}" is not pinned by digest.`, this);
      const tag = releaseTag(parsed.digest);
      const loopback = isLoopbackRepository(parsed.repository);
      return {
        tag,
        script: copyImageScript({
          source: `${parsed.repository}@${parsed.digest}`,
          destination: parsed.repository,
          tag,
          ...(loopback ? { srcTlsVerify: false, destTlsVerify: false } : {}),
          ...(args.credentials ? { srcCredsEnv: CREDS_ENV, destCredsEnv: CREDS_ENV } : {}),
        }),
      };
    });
    this.tag = plan.tag;
    this.tagged = new command.local.Command(
      `${name}-tag`,
      {
        create: plan.script,
        update: plan.script,
        ...(args.credentials
          ? { environment: { [CREDS_ENV]: pulumi.secret(pulumi.interpolate`${args.credentials.username}:${args.credentials.password}`) } }
          : {}),
        triggers: [args.imageRef],
      },
      { parent: this, dependsOn: args.after },
    );
    this.registerOutputs({ tag: this.tag });
  }
}
