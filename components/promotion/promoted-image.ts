import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import type { RegistryConfig } from "../../lib/registry";
import { isDigest, parseImageRef } from "../../lib/image-ref";
import { isLoopbackRepository } from "../../lib/registry";
import { copyImageScript, promotedTag } from "./copy";
import type { RegistryCredentials } from "../../lib/registry";
import { RegistryRepository } from "../registry/registry-repository";

/** Variables the copy command reads `USER:PASSWORD` from; values are Pulumi secrets, never part of the command text. */
export const SOURCE_CREDS_ENV = "WORKBENCH_SRC_CREDS";
export const DEST_CREDS_ENV = "WORKBENCH_DEST_CREDS";

/** One entry of the stack's `promotion.images`, as `npm run promote` writes it. */
export interface PromotionRecord {
  /** The digest dev validated; the copy keeps it. */
  digest: string;
  /** Where dev pushed it: `repository@sha256:…`. */
  source: string;
  /** Pools dev validated it on. */
  validatedPools: string[];
}

export interface PromotedImageArgs {
  /** The variant or user image id being promoted (promotion.images key), for messages. */
  name: string;
  /** What `npm run promote` wrote into the stack file: the digest, where dev pushed it, and dev's pools. */
  promoted: PromotionRecord;
  /** Repository in this stack's registry, e.g. `workbench/universal`. */
  repositoryName: string;
  registry: RegistryConfig;
  /**
   * Push credentials for this stack's registry (ECR login); the password must be a Pulumi secret.
   * @default none: skopeo uses the deploying user's own registry login
   */
  credentials?: RegistryCredentials;
  /**
   * Pull credentials for the source registry (dev's ECR).
   * @default none: skopeo uses the deploying user's own registry login
   */
  sourceCredentials?: RegistryCredentials;
  /** Protect the repository and retain it on delete (prod). */
  protect: boolean;
}

/**
 * One promoted image (issue #7): prod never builds; it copies the digest dev validated into its own repository,
 * keeping the digest (skopeo copy --all --preserve-digests), and tags it `promoted-<12 hex>` so lifecycle rules keep
 * it. The copy re-runs only when the digest changes (`triggers`), and is a no-op when the tag already holds the
 * digest. Scanning, signing with prod's key and validation on prod's pools follow, over `imageRef`.
 */
export class PromotedImage extends pulumi.ComponentResource {
  readonly repository: RegistryRepository;
  readonly copy: command.local.Command;
  readonly repositoryUrl: pulumi.Output<string>;
  /** The promoted digest: the same in dev and prod. */
  readonly digest: string;
  /** `promoted-<first 12 hex of the digest>`. */
  readonly tag: string;
  /** `<repositoryUrl>@<digest>`, resolved only after the copy succeeded (consumers depend on it). */
  readonly imageRef: pulumi.Output<string>;

  constructor(name: string, args: PromotedImageArgs, opts?: pulumi.ComponentResourceOptions) {
    super("workbench:promotion:PromotedImage", name, {}, opts);
    const { digest, source } = args.promoted;
    const where = `promotion.images.${args.name}`;
    const sourceRef = parseImageRef(source);
    if (!isDigest(digest)) {
      throw new pulumi.ResourceError(`${where}.digest "${digest}" is not a digest "sha256:" + 64 hex characters. Re-run \`npm run promote\`.`, this);
    }
    if (sourceRef?.digest === undefined) {
      throw new pulumi.ResourceError(`${where}.source "${source}" is not pinned by digest (repository@sha256:…). Re-run \`npm run promote\`.`, this);
    }
    if (sourceRef.digest !== digest) {
      throw new pulumi.ResourceError(
        `${where}.source is pinned to ${sourceRef.digest} but digest is ${digest}. The stack file was edited by hand: re-run \`npm run promote\`.`,
        this,
      );
    }
    this.digest = digest;
    this.tag = promotedTag(digest);

    this.repository = new RegistryRepository(
      `${name}-repository`,
      { repositoryName: args.repositoryName, registry: args.registry, protect: args.protect },
      { parent: this },
    );
    this.repositoryUrl = this.repository.repositoryUrl;

    const environment: Record<string, pulumi.Input<string>> = {};
    if (args.sourceCredentials) environment[SOURCE_CREDS_ENV] = userPass(args.sourceCredentials);
    if (args.credentials) environment[DEST_CREDS_ENV] = userPass(args.credentials);
    const sourcePinned = `${sourceRef.repository}@${digest}`;
    const tag = this.tag;
    this.copy = new command.local.Command(
      `${name}-copy`,
      {
        create: this.repositoryUrl.apply((destination) =>
          copyImageScript({
            source: sourcePinned,
            destination,
            tag,
            ...(isLoopbackRepository(sourcePinned) ? { srcTlsVerify: false } : {}),
            ...(isLoopbackRepository(destination) ? { destTlsVerify: false } : {}),
            ...(args.sourceCredentials ? { srcCredsEnv: SOURCE_CREDS_ENV } : {}),
            ...(args.credentials ? { destCredsEnv: DEST_CREDS_ENV } : {}),
          }),
        ),
        ...(Object.keys(environment).length > 0 ? { environment } : {}),
        triggers: [digest],
      },
      { parent: this, dependsOn: [this.repository] },
    );
    const repositoryUrl = this.repositoryUrl;
    this.imageRef = pulumi.all([repositoryUrl, this.copy.stdout]).apply(([url]) => `${url}@${digest}`);
    this.registerOutputs({ repositoryUrl: this.repositoryUrl, digest: this.digest, tag: this.tag, imageRef: this.imageRef });
  }
}

/** `USER:PASSWORD` as skopeo's --src-creds/--dest-creds want it, secret from the start. */
function userPass(c: RegistryCredentials): pulumi.Output<string> {
  return pulumi.secret(pulumi.interpolate`${c.username}:${c.password}`);
}
