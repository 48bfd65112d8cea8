/**
 * ECR repository policy as data (issue #2): which tags may be overwritten and which images expire.
 * Pure, so the policy pack and tests read the same values the program sets.
 */

/** Tags every build gets: `build-<content hash>`. */
export const BUILD_TAG_PREFIX = "build-";
/** Tags that mark an image offered to users (dev) or copied in by promotion (prod); never expired. */
export const RELEASE_TAG_PREFIX = "release-";
export const PROMOTED_TAG_PREFIX = "promoted-";
/** BuildKit's registry cache lives under this tag and is overwritten by every build. */
export const CACHE_TAG = "buildcache";

/**
 * Tags allowed to be overwritten in an otherwise immutable repository: cosign's signature, attestation and SBOM
 * tags (`sha256-<digest>.sig|.att|.sbom`, rewritten when a digest is signed again) and the build cache. Nothing a
 * user pulls by tag is mutable.
 */
export const MUTABLE_TAG_FILTERS = [
  { filterType: "WILDCARD", filter: "sha256-*" },
  { filterType: "WILDCARD", filter: `${CACHE_TAG}*` },
] as const;

export interface LifecycleSettings {
  keepTagged: number;
  untaggedExpireDays: number;
}

/** ECR caps countNumber for imageCountMoreThan far above any real repository; this is our "keep forever". */
const KEEP_FOREVER = 100000;

/**
 * The lifecycle policy. ECR evaluates rules by ascending priority and an image selected by a higher-priority rule is
 * never expired by a lower one (ECR User Guide, "Lifecycle policy evaluation rules"), so rule 1 shields release and
 * promoted images from rule 3 by selecting them with a count no repository reaches.
 */
export function ecrLifecyclePolicy(settings: LifecycleSettings): string {
  return JSON.stringify({
    rules: [
      {
        rulePriority: 1,
        description: "Never expire images that are published (release-*) or promoted (promoted-*)",
        selection: {
          tagStatus: "tagged",
          tagPatternList: [`${RELEASE_TAG_PREFIX}*`, `${PROMOTED_TAG_PREFIX}*`],
          countType: "imageCountMoreThan",
          countNumber: KEEP_FOREVER,
        },
        action: { type: "expire" },
      },
      {
        rulePriority: 2,
        description: `Expire untagged manifests after ${settings.untaggedExpireDays} day(s)`,
        selection: { tagStatus: "untagged", countType: "sinceImagePushed", countUnit: "days", countNumber: settings.untaggedExpireDays },
        action: { type: "expire" },
      },
      {
        rulePriority: 3,
        description: `Keep the ${settings.keepTagged} newest builds (build-*)`,
        selection: {
          tagStatus: "tagged",
          tagPatternList: [`${BUILD_TAG_PREFIX}*`],
          countType: "imageCountMoreThan",
          countNumber: settings.keepTagged,
        },
        action: { type: "expire" },
      },
    ],
  });
}

/** What another account needs to pull an image (ECR User Guide, "Private repository policy examples"). */
export const PULL_ACTIONS = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"] as const;

/**
 * A repository policy letting other accounts pull (never push): prod's account reads the digests dev validated when
 * it promotes them. Empty when no account is named.
 */
export function crossAccountPullPolicy(accountIds: readonly string[]): string {
  return JSON.stringify({
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "PullForPromotion",
        Effect: "Allow",
        Principal: { AWS: [...accountIds].sort().map((id) => `arn:aws:iam::${id}:root`) },
        Action: [...PULL_ACTIONS],
      },
    ],
  });
}
