import * as ecr from "@pulumi/aws/ecr";
import * as pulumi from "@pulumi/pulumi";
import type { RegistryConfig } from "../../lib/registry";
import { crossAccountPullPolicy, ecrLifecyclePolicy, MUTABLE_TAG_FILTERS } from "./ecr";

export interface RegistryRepositoryArgs {
  /** Full repository name, e.g. `workbench/universal` or `workbench-1722830498/thesis`. */
  repositoryName: string;
  registry: RegistryConfig;
  /**
   * Protect the repository: `pulumi destroy` and a replacement refuse to touch it (prod).
   * @default false
   */
  protect?: boolean;
}

/**
 * Where one image variant lives. ECR: an immutable, scanned, KMS-encrypted repository with a lifecycle policy.
 * Local: a path on the local registry (a registry creates repositories on first push), so no cloud resource.
 */
export class RegistryRepository extends pulumi.ComponentResource {
  /** `registry-host[:port]/repository`, without tag or digest. */
  readonly repositoryUrl: pulumi.Output<string>;
  readonly repositoryName: string;

  constructor(name: string, args: RegistryRepositoryArgs, opts?: pulumi.ComponentResourceOptions) {
    super("workbench:registry:RegistryRepository", name, {}, opts);
    this.repositoryName = args.repositoryName;
    const registry = args.registry;
    if (registry.kind === "ecr") {
      const protect = args.protect ?? false;
      const repo = new ecr.Repository(
        `${name}-ecr`,
        {
          name: args.repositoryName,
          imageTagMutability: "IMMUTABLE_WITH_EXCLUSION",
          imageTagMutabilityExclusionFilters: MUTABLE_TAG_FILTERS.map((f) => ({ ...f })),
          imageScanningConfiguration: { scanOnPush: true },
          encryptionConfigurations: [
            registry.kmsKeyArn !== undefined ? { encryptionType: "KMS", kmsKey: registry.kmsKeyArn } : { encryptionType: "KMS" },
          ],
          forceDelete: registry.forceDelete,
          tags: { "workbench-images/repository": args.repositoryName },
        },
        // Removing a variant or a user from configuration leaves its repository and every image in it in AWS
        // (issue #11): ECR refuses to delete a repository that holds images unless forceDelete, and published or
        // promoted digests must not vanish as a side effect of a config edit. `registry.forceDelete: true` opts
        // into deleting the repository with its images.
        { parent: this, protect, retainOnDelete: protect || !registry.forceDelete },
      );
      new ecr.LifecyclePolicy(
        `${name}-lifecycle`,
        { repository: repo.name, policy: ecrLifecyclePolicy(registry.lifecycle) },
        { parent: this },
      );
      if (registry.pullAccountIds.length > 0) {
        new ecr.RepositoryPolicy(
          `${name}-pull-policy`,
          { repository: repo.name, policy: crossAccountPullPolicy(registry.pullAccountIds) },
          { parent: this },
        );
      }
      this.repositoryUrl = repo.repositoryUrl;
    } else {
      const host = `${registry.host}:${registry.port}`;
      this.repositoryUrl = pulumi.output(`${host}/${args.repositoryName}`);
    }
    this.registerOutputs({ repositoryUrl: this.repositoryUrl });
  }
}
